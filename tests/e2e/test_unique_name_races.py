"""Concurrent requests that race for a unique name, against a real server over real HTTP.

Before: on PostgreSQL, 12 product creates naming the same new category answered 11 × 500
(`uq_categorias_nombre`), the same with a new supplier, and 12 PATCHes giving the same new
barcode to different products answered 9 × 500. Now the category or supplier is created
once and shared, and a barcode taken by a concurrent twin is a 409 `codigo_barras_duplicado`.
SQLite (writers queue) must give the same answers. One server per backend for the module
(`shared_server`): each race is over its own new name or barcode and its own SKUs.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.servers import Server

pytestmark = pytest.mark.timeout(180)

CLIENTS = 12


def together(server: Server, key: str, request: Callable[[httpx.Client, int], httpx.Response]) -> list[httpx.Response]:
    """CLIENTS threads, each on its own warmed-up connection, released at once by a barrier."""
    gate = threading.Barrier(CLIENTS, timeout=30)

    def worker(i: int) -> httpx.Response:
        with server.client(key, timeout=60) as client:
            assert client.get("/health/live").status_code == 200
            gate.wait()
            response = request(client, i)
            response.read()
            return response

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return [f.result(timeout=120) for f in [pool.submit(worker, i) for i in range(CLIENTS)]]


def statuses(responses: list[httpx.Response]) -> Counter:
    return Counter(r.status_code for r in responses)


@pytest.mark.parametrize("field", ["category", "supplier"])
def test_concurrent_creates_share_one_new_category_or_supplier(shared_server: Server, shared_key: str,
                                                              field: str) -> None:
    server, key = shared_server, shared_key
    name = {"category": "Almacén Nuevo", "supplier": "Distribuidora Nueva SRL"}[field]
    answers = together(server, key, lambda client, i: client.post(
        "/api/inventory", json={"sku": f"CARR-{field[:3].upper()}-{i:02d}", "name": f"Producto {i}", field: name}))
    assert statuses(answers) == Counter({201: CLIENTS}), [r.text[:200] for r in answers if r.status_code != 201]
    assert {r.json()[field] for r in answers} == {name}
    with server.client(key) as client:
        if field == "category":
            rows = [c for c in client.get("/api/categories").json() if c["name"].lower() == name.lower()]
            assert len(rows) == 1 and rows[0]["products"] == CLIENTS, rows
        listed = client.get("/api/inventory", params={field: name, "limit": 50}).json()["items"]
        assert len(listed) == CLIENTS


def test_concurrent_patches_to_one_new_barcode_give_it_to_one_product(shared_server: Server, shared_key: str) -> None:
    server, key = shared_server, shared_key
    barcode = "7790895000997"
    with server.client(key) as client:
        for i in range(CLIENTS):
            r = client.post("/api/inventory", json={"sku": f"EAN-{i:02d}", "name": f"Producto {i}"})
            assert r.status_code == 201, r.text
    answers = together(server, key, lambda client, i: client.patch(f"/api/inventory/EAN-{i:02d}",
                                                                   json={"barcode": barcode}))
    assert statuses(answers) == Counter({200: 1, 409: CLIENTS - 1}), [r.text[:200] for r in answers]
    winner = next(r.json()["sku"] for r in answers if r.status_code == 200)
    for refused in (r for r in answers if r.status_code == 409):
        error = refused.json()["error"]
        assert error["code"] == "codigo_barras_duplicado", error
        assert barcode in error["message"] and winner in error["message"], error
    with server.client(key) as client:
        assert client.get(f"/api/inventory/{barcode}").json()["sku"] == winner


def test_concurrent_creates_with_one_new_barcode_are_one_201_and_409s(shared_server: Server, shared_key: str) -> None:
    server, key = shared_server, shared_key
    barcode = "7790387000016"
    answers = together(server, key, lambda client, i: client.post(
        "/api/inventory", json={"sku": f"DUP-{i:02d}", "name": f"Producto {i}", "barcode": barcode,
                                "category": "Otra Categoría Nueva"}))
    assert statuses(answers) == Counter({201: 1, 409: CLIENTS - 1}), [r.text[:200] for r in answers]
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} == {"codigo_barras_duplicado"}

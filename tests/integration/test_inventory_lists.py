"""The product lists (`GET /api/inventory`) at scale: the trigram indexes behind `q=` keep a short pending
list, a page is cut on ids before anything is joined, and a kept page is never served after a
write that changed it (with Redis shared by two replicas, and with the read caches off)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from minimarket.stock import inventory
from tests.integration.helpers import create_product



@pytest.mark.postgres
def test_trigram_indexes_keep_a_short_pending_list(app, backend: str) -> None:  # noqa: ANN001
    if backend != "postgresql":
        pytest.skip("trigram indexes exist on PostgreSQL only")
    with app.state.db.read() as session:
        options = dict(session.execute(text(
            "SELECT c.relname, array_to_string(c.reloptions, ',') FROM pg_class c "
            "WHERE c.relname LIKE 'ix_productos_%_trgm'")).all())
    assert options == {f"ix_productos_{column}_trgm": "gin_pending_list_limit=256"
                       for column in ("nombre", "sku", "marca")}


def _walk(client, admin, limit: int, **filters) -> list[str]:  # noqa: ANN001, ANN003
    """Every SKU of a list, page by page through next_cursor."""
    seen, cursor = [], None
    for _ in range(100):
        response = client.get("/api/inventory", headers=admin,
                              params={"limit": limit, **filters, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = [item["sku"] for item in response.json()["items"]]
        assert len(page) <= limit
        seen.extend(page)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return seen
        assert page, "a page with a next_cursor cannot be empty"
    raise AssertionError("pagination does not terminate")


@pytest.fixture
def yerbas(client, admin) -> dict[str, list[str]]:  # noqa: ANN001
    """Eleven yerbas (every third low, every fourth without stock, one inactive) and two other products."""
    expected: dict[str, list[str]] = {"q": [], "low": [], "out": [], "low_q_cat": []}
    for i in (7, 3, 10, 0, 5, 9, 1, 4, 8, 2, 6):  # created out of SKU order: ids and SKUs differ in order
        sku = f"YER-{i:02d}"
        stock = 0 if i % 4 == 0 else 10
        minimum = 20 if i % 3 == 0 else 1
        category = "Infusiones" if i % 2 else "Almacén"
        create_product(client, admin, sku, name=f"Yerba mate {i}", category=category, min_stock=minimum,
                       **({"initial_stock": stock} if stock else {}))
        if i == 5:
            assert client.delete(f"/api/inventory/{sku}", headers=admin).status_code == 200
            continue
        expected["q"].append(sku)
        if stock <= minimum:
            expected["low"].append(sku)
            if category == "Infusiones":
                expected["low_q_cat"].append(sku)
        if stock <= 0:
            expected["out"].append(sku)
    create_product(client, admin, "AZU-1", name="Azúcar", min_stock=5)  # low and out of stock, not a yerba
    create_product(client, admin, "TE-1", name="Té verde", initial_stock=3)
    return {name: sorted(skus) for name, skus in expected.items()}


@pytest.mark.parametrize("max_candidates", [5_000, 3])
def test_every_page_of_a_search_or_a_stock_filter_in_order_without_gaps(
        client, admin, yerbas, monkeypatch, max_candidates: int) -> None:  # noqa: ANN001
    # 3: more candidates than that, and PostgreSQL reads the page walking the SKU index instead (the same pages)
    monkeypatch.setattr(inventory, "MAX_CANDIDATES", max_candidates)
    for limit in (1, 2, 3, 50):
        assert _walk(client, admin, limit, q="yerba") == yerbas["q"]
        assert _walk(client, admin, limit, low_stock="true") == sorted(yerbas["low"] + ["AZU-1"])
        assert _walk(client, admin, limit, out_of_stock="true") == sorted(yerbas["out"] + ["AZU-1"])
        assert _walk(client, admin, limit, q="yerba", low_stock="true", category="infusiones") == yerbas["low_q_cat"]
        assert _walk(client, admin, limit, q="YER-") == yerbas["q"]  # a SKU fragment
        assert _walk(client, admin, limit, q="ye") == yerbas["q"]  # two letters: no trigram, the same answer
    assert _walk(client, admin, 2, q="yerba", active="false") == ["YER-05"]


@pytest.mark.parametrize("max_candidates", [5_000, 3])
def test_numbered_pages_sorted_by_any_column_cover_the_list_once(app, client, admin, yerbas, monkeypatch,  # noqa: ANN001
                                                                 max_candidates: int) -> None:
    monkeypatch.setattr(inventory, "MAX_CANDIDATES", max_candidates)
    for sort, descending in [("sku", False), ("nombre", True), ("precio", False)]:
        for filters, expected in [({"q": "yerba"}, yerbas["q"]), ({"low_stock": True}, yerbas["low"] + ["AZU-1"])]:
            seen, page = [], 1
            with app.state.db.read() as session:
                while True:
                    items, more = inventory.inventory_page(session, sort=sort, descending=descending, page=page,
                                                           per_page=2, **filters)
                    seen.extend(item.sku for item in items)
                    if not more:
                        break
                    page += 1
                beyond, more = inventory.inventory_page(session, sort=sort, page=page + 3, per_page=2, **filters)
            assert sorted(seen) == sorted(expected) and len(seen) == len(expected), (sort, filters)
            if sort == "nombre":
                names = {f"YER-{i:02d}": f"Yerba mate {i}" for i in range(11)} | {"AZU-1": "Azúcar"}
                assert [names[s] for s in seen] == sorted((names[s] for s in seen), reverse=True)
            assert (beyond, more) == ([], False)

"""/api/suppliers over HTTP on SQLite and PostgreSQL: the file, 'a completar', rules, merges, audit."""

from __future__ import annotations

from sqlalchemy import select

from minimarket.accounts.models import AuditEntry
from minimarket.invoices.models import Invoice
from tests.integration.helpers import create_product, error_of

CUIT = "30-54668997-9"
OTHER_CUIT = "30-70308853-4"


def new_supplier(client, headers, name="Distribuidora Norte S.A.", **fields):  # noqa: ANN001, ANN201
    response = client.post("/api/suppliers", json={"name": name, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def audit_actions(app, entity_id: str) -> list[str]:  # noqa: ANN001
    with app.state.db.read() as session:
        return list(session.scalars(select(AuditEntry.action).where(AuditEntry.entity == "proveedor",
                                                                    AuditEntry.entity_id == entity_id)
                                    .order_by(AuditEntry.id)))


def test_create_read_update_and_deactivate_keeps_history(client, admin, app):
    created = new_supplier(client, admin, code="norte-1", cuit="30546689979", phone="011 4555-1234",
                           email="Ventas@Norte.com.ar", address="Av. Siempreviva 742",
                           order_days=["Jueves", "lunes"], lead_time_days=2, min_order="150000.00",
                           notes="Entrega por la mañana")
    assert created["cuit"] == CUIT and created["code"] == "NORTE-1" and created["email"] == "ventas@norte.com.ar"
    assert created["order_days"] == ["lunes", "jueves"] and created["incomplete"] is False
    assert created["min_order"] == "150000.00" and created["lead_time_days"] == 2
    sid = created["id"]
    create_product(client, admin, "YERBA-1", supplier=CUIT)
    fetched = client.get(f"/api/suppliers/{sid}", headers=admin).json()
    assert fetched["products"] == 1
    patched = client.patch(f"/api/suppliers/{sid}", json={"lead_time_days": 3, "notes": None}, headers=admin)
    assert patched.status_code == 200, patched.text
    assert patched.json()["lead_time_days"] == 3 and patched.json()["notes"] is None
    gone = client.delete(f"/api/suppliers/{sid}", headers=admin)
    assert gone.status_code == 200 and gone.json()["active"] is False
    assert [s["id"] for s in client.get("/api/suppliers", headers=admin).json()["items"]] == []
    inactive = client.get("/api/suppliers?active=false", headers=admin).json()["items"]
    assert [s["id"] for s in inactive] == [sid] and inactive[0]["products"] == 1
    assert client.get("/api/inventory/YERBA-1", headers=admin).json()["supplier"] == "Distribuidora Norte S.A."
    assert audit_actions(app, str(sid)) == ["supplier.create", "supplier.update", "supplier.deactivate"]


def test_a_product_naming_an_unknown_supplier_creates_one_a_completar(client, admin):
    create_product(client, admin, "GALL-1", supplier="Galletitera del Sur")
    incomplete = client.get("/api/suppliers?incomplete=true", headers=admin).json()["items"]
    assert [(s["name"], s["cuit"], s["incomplete"], s["products"]) for s in incomplete] == \
        [("Galletitera del Sur", None, True, 1)]
    # Completing its file takes it off the list; products keep naming it.
    client.patch(f"/api/suppliers/{incomplete[0]['id']}", json={"cuit": OTHER_CUIT}, headers=admin)
    assert client.get("/api/suppliers?incomplete=true", headers=admin).json()["items"] == []
    create_product(client, admin, "GALL-2", supplier="galletitera del sur")
    assert client.get(f"/api/suppliers/{incomplete[0]['id']}", headers=admin).json()["products"] == 2


def test_bad_input_names_the_field(client, admin):
    cases = [
        ({"name": "X", "cuit": "30-54668997-8"}, "cuit", "dígito verificador"),
        ({"name": "X", "cuit": "123"}, "cuit", "11 dígitos"),
        ({"name": "X", "order_days": ["lunes", "feriado"]}, "order_days", "feriado"),
        ({"name": "X", "email": "ventas"}, "email", "e-mail"),
        ({"name": "X", "lead_time_days": -1}, "lead_time_days", "mayor o igual"),
        ({"name": "X", "min_order": "-5"}, "min_order", "mayor o igual"),
        ({"name": "X", "code": "con espacios"}, "code", "código"),
        ({"name": ""}, "name", "vacío"),
        ({"name": "X", "colour": "rojo"}, "colour", "campo"),
    ]
    for body, field, words in cases:
        error = error_of(client.post("/api/suppliers", json=body, headers=admin), 422, mentions=(field, words))
        assert error["details"][0]["field"] == field, (body, error)


def test_duplicates_are_409_naming_the_existing_supplier(client, admin):
    first = new_supplier(client, admin, cuit=CUIT, code="N1")
    for body, field in (({"name": "distribuidora norte s.a."}, "name"), ({"name": "Otro", "cuit": "30546689979"}, "cuit"),
                        ({"name": "Otro", "code": "n1"}, "code")):
        error = error_of(client.post("/api/suppliers", json=body, headers=admin), 409, code="proveedor_duplicado",
                         mentions=field)
        assert error["details"]["existing_id"] == first["id"]
    error_of(client.get("/api/suppliers/999", headers=admin), 404, mentions="999")


def test_merge_moves_products_invoices_codes_and_fills_blanks(client, admin, app):
    survivor = new_supplier(client, admin, name="Lácteos La Cuenca S.A.", order_days=["martes"])
    create_product(client, admin, "LECHE-1", supplier="La Cuenca")  # typed differently: a new, incomplete row
    create_product(client, admin, "YOG-1", supplier="La Cuenca")
    loser = client.get("/api/suppliers?q=la cuenca&incomplete=true", headers=admin).json()["items"][-1]
    assert loser["name"] == "La Cuenca" and loser["products"] == 2
    client.patch(f"/api/suppliers/{loser['id']}", json={"phone": "0800-LECHE", "cuit": CUIT}, headers=admin)
    response = client.post(f"/api/suppliers/{loser['id']}/merge", json={"into": survivor["id"]}, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["moved"]["products"] == 2
    assert body["survivor"]["products"] == 2 and body["survivor"]["phone"] == "0800-LECHE"
    assert body["survivor"]["cuit"] == CUIT and body["survivor"]["order_days"] == ["martes"]
    assert body["merged"]["active"] is False and body["merged"]["merged_into"] == survivor["id"]
    assert body["merged"]["cuit"] is None and body["merged"]["products"] == 0
    for sku in ("LECHE-1", "YOG-1"):
        assert client.get(f"/api/inventory/{sku}", headers=admin).json()["supplier"] == "Lácteos La Cuenca S.A."
    # The old name keeps working and lands on the survivor.
    create_product(client, admin, "QUESO-1", supplier="La Cuenca")
    assert client.get("/api/inventory/QUESO-1", headers=admin).json()["supplier"] == "Lácteos La Cuenca S.A."
    assert audit_actions(app, str(loser["id"]))[-1] == "supplier.merge"
    with app.state.db.read() as session:
        before, after = session.execute(select(AuditEntry.before, AuditEntry.after)
                                        .where(AuditEntry.action == "supplier.merge")).one()
    assert after["moved"]["products"] == 2 and before["merged"]["phone"] == "0800-LECHE"
    # Merging again, into itself, or reactivating the merged one is refused clearly.
    error_of(client.post(f"/api/suppliers/{loser['id']}/merge", json={"into": survivor["id"]}, headers=admin), 409,
             code="proveedor_fusionado")
    error_of(client.post(f"/api/suppliers/{survivor['id']}/merge", json={"into": survivor["id"]}, headers=admin),
             422, mentions="into")
    error_of(client.patch(f"/api/suppliers/{loser['id']}", json={"active": True}, headers=admin), 409,
             mentions="fusionó")
    with app.state.db.read() as session:
        assert session.scalars(select(Invoice)).all() == []


def test_assignment_rules_suggest_a_supplier(client, admin):
    bebidas = new_supplier(client, admin, name="Bebidas Sur")
    cafe = new_supplier(client, admin, name="Cafetera Norte")
    default = new_supplier(client, admin, name="Mayorista General")
    for rule in ({"kind": "categoria", "value": "Bebidas", "supplier": bebidas["id"]},
                 {"kind": "marca", "value": "La Virginia", "supplier": cafe["id"]},
                 {"kind": "palabra", "value": "gaseosa", "supplier": bebidas["id"], "priority": 5},
                 {"kind": "predeterminado", "supplier": default["id"]}):
        assert client.post("/api/suppliers/rules", json=rule, headers=admin).status_code == 201
    rules = client.get("/api/suppliers/rules", headers=admin).json()
    assert [r["value"] for r in rules][0] == "gaseosa"
    assert {r["value"] for r in rules} == {"bebidas", "la virginia", "gaseosa", ""}

    def suggest(**body):  # noqa: ANN003, ANN202
        response = client.post("/api/suppliers/assign", json=body, headers=admin)
        assert response.status_code == 200, response.text
        return response.json()

    answer = suggest(name="CAFÉ la-virginia, molido 500 g")
    assert answer["supplier"]["id"] == cafe["id"] and answer["confidence"] == "0.85"
    assert answer["rule"]["kind"] == "marca" and "la virginia" in answer["reason"]
    assert suggest(name="Café molido", brand="LA VIRGINIA")["confidence"] == "0.95"
    assert suggest(name="Gaseosa cola 2 l", category="bebidas")["rule"]["kind"] == "palabra"
    assert suggest(name="Agua mineral", category="Bebídas")["supplier"]["id"] == bebidas["id"]
    fallback = suggest(name="Fideos tirabuzón")
    assert fallback["supplier"]["id"] == default["id"] and fallback["confidence"] == "0.30"
    error_of(client.post("/api/suppliers/rules", json={"kind": "predeterminado", "supplier": cafe["id"]},
                         headers=admin), 409, code="regla_duplicada")
    error_of(client.post("/api/suppliers/rules", json={"kind": "marca", "value": "!!", "supplier": cafe["id"]},
                         headers=admin), 422, mentions="value")
    default_rule = next(r for r in rules if r["kind"] == "predeterminado")
    assert client.delete(f"/api/suppliers/rules/{default_rule['id']}", headers=admin).status_code == 200
    nothing = suggest(name="Fideos tirabuzón")
    assert nothing["supplier"] is None and nothing["confidence"] == "0" and nothing["rule"] is None


def test_the_same_supplier_created_at_once_is_one_201_and_409s(client, admin, app):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from minimarket.suppliers.models import Supplier

    clients = 6
    start = threading.Barrier(clients)

    def create(n: int) -> int:
        start.wait()
        body = {"name": "Distribuidora Concurrente", "cuit": CUIT} if n % 2 else \
            {"name": f"Otro nombre {n}", "cuit": CUIT}
        return client.post("/api/suppliers", json=body, headers=admin).status_code

    with ThreadPoolExecutor(clients) as pool:
        statuses = sorted(pool.map(create, range(clients)))
    assert statuses == [201] + [409] * (clients - 1), statuses
    with app.state.db.read() as session:
        assert len(session.scalars(select(Supplier)).all()) == 1


def test_search_by_a_partial_cuit_with_or_without_dashes(client, admin):
    norte = new_supplier(client, admin, cuit=CUIT)["id"]  # 30-54668997-9
    sur = new_supplier(client, admin, name="Mayorista Sur", cuit=OTHER_CUIT)["id"]  # 30-70308853-4
    new_supplier(client, admin, name="Almacén 546 sin CUIT")

    def found(q: str) -> list[int]:
        response = client.get("/api/suppliers", params={"q": q}, headers=admin)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["items"]]

    for q in ("30-5466", "305466", "54668997", "4668997-9", " 30-54668997-9 ", "30546689979"):
        assert found(q) == [norte], q
    assert found("30-7") == [sur] and found("30") == []  # two digits are too few to search CUITs by
    assert [s for s in found("546") if s in (norte, sur)] == [norte]  # and the one named '546'
    for q in ("٣٠٥٤٦", "30_5466", "30-5466x", "99999"):  # other digits, not a CUIT, or no one's: no CUIT match
        assert found(q) == [], q

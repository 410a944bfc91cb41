"""How many SQL statements a page drawn anew costs: a list's statements do not grow with its rows, and a product's
page reads the product once. Counted on the app's engine, on both backends; each case also checks what the page
shows, so a page that got cheaper by showing less would fail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from tests.web.helpers import sign_in
from tests.web.test_page_roles import a_draft_invoice


@contextmanager
def statements(app) -> Iterator[list[str]]:  # noqa: ANN001
    """The SQL statements the app runs inside the block, but transaction control and the session's own (read
    each time without Redis; kept with it: accounts.sessions.verified_session)."""
    seen: list[str] = []

    def note(conn, cursor, statement, params, context, executemany):  # noqa: ANN001, ANN202, ARG001
        if statement.strip().upper() not in ("BEGIN", "COMMIT", "ROLLBACK") and "FROM sesiones" not in statement:
            seen.append(statement)

    engine = app.state.db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def drawn(app, client, path: str) -> tuple[str, list[str]]:  # noqa: ANN001
    with statements(app) as seen:
        page = client.get(path)
    assert page.status_code == 200, page.text
    return page.text, list(seen)


def test_invoice_list_reads_a_fixed_number_of_statements(app, client, shop):
    sign_in(app, client, "admin")
    client.get("/")  # the session is verified and kept by the first page
    first = a_draft_invoice(app, unmatched=True)
    text, one = drawn(app, client, "/facturas")
    assert f'href="/facturas/{first}"' in text and "1 línea(s) sin asociar" in text
    more = [a_draft_invoice(app, unmatched=i % 2 == 0) for i in range(4)]
    text, five = drawn(app, client, "/facturas")
    assert all(f'href="/facturas/{i}"' in text for i in more)
    assert text.count("línea(s) sin asociar") == 3  # the first and two of the four: the unmatched lines counted
    assert len(five) == len(one), "the list reads each invoice's lines, supplier or products on its own"


def test_supplier_list_counts_products_in_one_statement(app, client, shop, admin):
    from tests.web.test_page_roles import a_supplier

    sign_in(app, client, "admin")
    client.get("/")
    a_supplier(app)
    _, one = drawn(app, client, "/proveedores")
    for name, cuit in (("Mayorista Sur", "30-71234569-8"), ("Lácteos Oeste", "30-71234570-1")):
        made = client.post("/api/suppliers", json={"name": name, "cuit": cuit}, headers=admin)
        assert made.status_code == 201, made.text
    supplier_id = made.json()["id"]
    changed = client.patch("/api/inventory/YERBA-1", json={"supplier": "Lácteos Oeste"}, headers=admin)
    assert changed.status_code == 200, changed.text
    text, three = drawn(app, client, "/proveedores")
    assert "Mayorista Sur" in text and "Lácteos Oeste" in text
    row = re.search(rf'href="/proveedores/{supplier_id}".*?</tr>', text, re.S).group(0)
    assert re.search(r">\s*1\s*<", row), row  # Lácteos Oeste has YERBA-1
    assert len(three) == len(one), "the list counts each supplier's products on its own"


def test_product_page_reads_the_product_once(app, client, shop):
    sign_in(app, client, "admin")
    client.get("/")
    text, seen = drawn(app, client, "/inventario/yerba-1")  # any case: not a kept page, drawn every time
    assert "Yerba mate suave 1 kg" in text and "Almacén" in text and "$ 1.234,56" in text and "100" in text
    assert "Stock inicial" in text  # its movement history
    products = [s for s in seen if re.search(r"\bFROM productos\b", s)]
    assert len(products) == 1, products  # the product, its category, supplier and stock in one statement
    assert len(seen) <= 3, seen  # that, its movements, its price changes

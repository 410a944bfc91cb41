"""Purchase order rules without a database: states, units from packs, what a delivery may bring,
and the WhatsApp text the supplier reads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from minimarket.purchasing import order_rules as rules
from minimarket.purchasing.order_documents import order_pdf, whatsapp_text
from minimarket.purchasing.order_schemas import OrderLineOut, OrderOut
from minimarket.suppliers.models import Supplier

D = Decimal


@pytest.mark.parametrize(("current", "target", "allowed"), [
    ("borrador", "enviado", True), ("borrador", "cancelado", True), ("borrador", "recibido", False),
    ("enviado", "recibido_parcial", True), ("enviado", "recibido", True), ("enviado", "borrador", False),
    ("recibido_parcial", "recibido_parcial", True), ("recibido_parcial", "cancelado", True),
    ("recibido", "cancelado", False), ("recibido", "recibido_parcial", False), ("cancelado", "enviado", False),
])
def test_transitions(current: str, target: str, allowed: bool) -> None:
    assert rules.can_move(current, target) is allowed
    problem = rules.transition_problem(current, target)
    assert (problem is None) is allowed
    if current == "borrador" and target == "recibido":
        assert "envialo" in problem
    if current in ("recibido", "cancelado"):
        assert "ya no se puede" in problem


def test_every_state_has_a_label_and_terminal_states_lead_nowhere() -> None:
    assert set(rules.STATE_LABELS) == set(rules.TRANSITIONS)
    assert rules.TRANSITIONS["recibido"] == rules.TRANSITIONS["cancelado"] == frozenset()
    assert set(rules.OPEN_STATES) == {"enviado", "recibido_parcial"}


@pytest.mark.parametrize(("quantity", "packs", "pack_size", "units"), [
    (D(24), None, 12, D(24)), (D(7), None, None, D(7)), (D(7), None, 1, D(7)), (None, 3, 12, D(36)),
    (D(36), 3, 12, D(36)), (D("2.5"), None, None, D("2.5")),
])
def test_units_ordered(quantity, packs, pack_size, units) -> None:  # noqa: ANN001
    assert rules.units_ordered(quantity=quantity, packs=packs, pack_size=pack_size) == units


@pytest.mark.parametrize(("quantity", "packs", "pack_size", "says"), [
    (D(30), None, 12, "pedí 24 o 36 unidades"),
    (D(5), None, 12, "pedí 12 unidades"),
    (None, 2, None, "pack_size"),
    (D(30), 3, 12, "3 bultos de 12 son 36 unidades, no 30"),
    (None, None, 12, "quantity"),
])
def test_units_ordered_refuses(quantity, packs, pack_size, says) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=says):
        rules.units_ordered(quantity=quantity, packs=packs, pack_size=pack_size)


def test_delivery_within_what_is_pending_and_over_only_when_asked() -> None:
    line = rules.LineState(ordered=D(24), received=D(20))
    assert line.pending == D(4)
    assert rules.delivery_problem(line, D(4), allow_over=False) is None
    assert "quedan 4, llegaron 6" in rules.delivery_problem(line, D(6), allow_over=False)
    assert rules.delivery_problem(line, D(6), allow_over=True) is None
    assert rules.LineState(D(24), D(30)).pending == 0  # an over-receipt leaves nothing pending, never negative


def test_state_after_delivery() -> None:
    done, short = rules.LineState(D(10), D(10)), rules.LineState(D(10), D(7))
    assert rules.state_after_delivery([done, done], close=False) == "recibido"
    assert rules.state_after_delivery([done, short], close=False) == "recibido_parcial"
    assert rules.state_after_delivery([done, short], close=True) == "recibido"


def _order() -> OrderOut:
    when = datetime(2026, 12, 1, 12, tzinfo=UTC)
    lines = [OrderLineOut(line=1, sku="YERBA", name="Yerba Playadito 1 kg", unit="u", quantity=D(36), pack_size=12,
                          packs=D(3), unit_cost=D("3100.50"), line_cost=D("111618.00"), received=D(0),
                          pending=D(36), reason=None),
             OrderLineOut(line=2, sku="QUESO", name="Queso cremoso", unit="kg", quantity=D("2.500"), pack_size=None,
                          packs=None, unit_cost=D("8000"), line_cost=D("20000.00"), received=D(0),
                          pending=D("2.5"), reason=None)]
    return OrderOut(id=7, supplier_id=1, supplier="Distribuidora Norte", supplier_phone=None, state="enviado",
                    state_label="Enviado", notes="Entregar por la tarde", lines=lines, total_cost=D("131618.00"),
                    pending_units=D("38.5"), created_by="test", created_at=when, sent_by="test", sent_at=when,
                    expected_on=date(2026, 12, 3), received_at=None, cancelled_by=None, cancelled_at=None,
                    cancel_reason=None, invoice_id=None, receipt_operations=[], pdf_url="", whatsapp_url="")


def test_whatsapp_text_is_what_an_argentine_supplier_reads() -> None:
    text = whatsapp_text(_order(), {"YERBA": "Y-1"})
    assert text.startswith("Hola Distribuidora Norte, les paso el pedido N° 7:\n")
    assert "- 3 bultos x 12 (36 u) [Y-1] Yerba Playadito 1 kg\n" in text
    assert "- 2,5 kg Queso cremoso\n" in text
    assert "Total estimado: $ 131.618,00" in text and "Entrega: jueves 03/12/2026" in text
    assert "Notas: Entregar por la tarde" in text


def test_pdf_is_a_pdf() -> None:
    body = order_pdf(_order(), {}, Supplier(name="Distribuidora Norte", cuit="30712345671", phone="11 5555-1234"),
                     generated=datetime(2026, 12, 1, 12, tzinfo=UTC))
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")

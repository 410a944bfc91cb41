"""Assignment rules (brand, keyword, category → supplier) and the supplier suggested for a product."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.errors import Conflict, NotFound
from minimarket.suppliers.models import AssignmentRule, Supplier
from minimarket.suppliers.rules import Rule, best_rule
from minimarket.suppliers.schemas import AssignIn, AssignOut, RuleIn, RuleOut
from minimarket.suppliers.service import find_supplier, supplier_out

_HOW = {"marca": "la marca es '{v}'", "marca_en_nombre": "el nombre menciona la marca '{v}'",
        "palabra": "el nombre contiene '{v}'", "categoria": "la categoría es '{v}'",
        "predeterminado": "ninguna regla coincide: es el proveedor predeterminado"}


def rule_out(rule: AssignmentRule, supplier: Supplier) -> RuleOut:
    return RuleOut(id=rule.id, kind=rule.kind, value=rule.value, supplier=supplier.id, supplier_name=supplier.name,
                   priority=rule.priority)


def list_rules(session: Session) -> list[RuleOut]:
    rows = session.execute(select(AssignmentRule, Supplier).join(Supplier, Supplier.id == AssignmentRule.supplier_id)
                           .order_by(AssignmentRule.priority.desc(), AssignmentRule.id)).all()
    return [rule_out(rule, supplier) for rule, supplier in rows]


def create_rule(session: Session, ctx: Context, *, data: RuleIn) -> RuleOut:
    """Add a rule; one rule per (kind, value), and one default supplier."""
    supplier = find_supplier(session, data.supplier)
    if not supplier.active:
        raise Conflict(f"supplier: el proveedor '{supplier.name}' está desactivado")
    clash = session.scalars(select(AssignmentRule).where(AssignmentRule.kind == data.kind,
                                                         AssignmentRule.value == data.value)).first()
    if clash is not None:
        what = "ya hay un proveedor predeterminado" if data.kind == "predeterminado" else \
            f"ya hay una regla {data.kind} '{data.value}'"
        raise Conflict(f"{data.kind}: {what} (regla {clash.id}); borrala antes de crear otra", code="regla_duplicada",
                       details={"existing_id": clash.id})
    rule = AssignmentRule(kind=data.kind, value=data.value, supplier_id=supplier.id, priority=data.priority)
    session.add(rule)
    session.flush()
    out = rule_out(rule, supplier)
    record_audit(session, ctx, action="supplier_rule.create", entity="proveedor_regla", entity_id=str(rule.id),
                 after=out.model_dump())
    return out


def delete_rule(session: Session, ctx: Context, *, rule_id: int) -> RuleOut:
    """Remove a rule (rules carry no history of their own; the audit log keeps it)."""
    rule = session.get(AssignmentRule, rule_id)
    if rule is None:
        raise NotFound(f"La regla {rule_id} no existe")
    out = rule_out(rule, session.get(Supplier, rule.supplier_id))
    session.delete(rule)
    record_audit(session, ctx, action="supplier_rule.delete", entity="proveedor_regla", entity_id=str(rule_id),
                 before=out.model_dump())
    return out


def suggest_supplier(session: Session, *, data: AssignIn) -> AssignOut:
    """The supplier the rules suggest for a product name (and optional brand and category)."""
    rows = session.execute(select(AssignmentRule, Supplier).join(Supplier, Supplier.id == AssignmentRule.supplier_id)
                           .where(Supplier.active.is_(True))).all()
    rules = [Rule(id=r.id, kind=r.kind, value=r.value, supplier_id=r.supplier_id, priority=r.priority)
             for r, _ in rows]
    match = best_rule(rules, name=data.name, brand=data.brand, category=data.category)
    if match is None:
        return AssignOut(supplier=None, confidence=Decimal("0"), rule=None,
                         reason="ninguna regla coincide y no hay proveedor predeterminado")
    by_id = {r.id: (r, s) for r, s in rows}
    rule, supplier = by_id[match.rule.id]
    return AssignOut(supplier=supplier_out(session, supplier), confidence=match.confidence,
                     rule=rule_out(rule, supplier), reason=_HOW[match.how].format(v=rule.value))

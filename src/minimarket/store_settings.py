"""The store's own settings (table `ajustes`): their keys, reading and writing them.

Three different things are "settings": the environment (`config.Settings`), the store's own
choices here (negative stock, pricing, last verification, last backup, …), and secrets (`system_config`,
encrypted: `platform/secrets.py`). Every read and write of `ajustes` goes through this module.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from minimarket.db import Base, Database
from minimarket.types import Timestamp, utcnow

NEGATIVE_STOCK = "stock.permitir_negativo"  # "true"/"false": may a movement leave stock below zero
LAST_VERIFY = "verify.ultimo"  # JSON of the last ledger verification, read by /metrics and the doctor
LAST_BACKUP = "backup.ultimo_exito"  # epoch seconds of the last verified backup
DEFAULT_MARKUP = "precios.margen_defecto"  # percent over cost when neither product nor category sets one
ROUNDING = "precios.redondeo"  # one of pricing.rules.ROUNDING_RULES
MONTHLY_INFLATION = "precios.inflacion_mensual"  # percent per month, for the replacement cost
SALE_MAX_DISCOUNT = "ventas.descuento_maximo"  # percent below the shelf price any seller may charge (default 0)
APPLY_SUGGESTED = "precios.aplicar_sugerido"  # "true": a new cost (invoice) also sets the suggested price
DEPOSITO_CONFIRMS_INVOICES = "facturas.deposito_confirma"  # "true": the deposito role may confirm a receipt
TAX_CONDITION = "tienda.condicion_iva"  # responsable_inscripto (default), monotributo or exento
STORE_NAME = "tienda.nombre"  # the store's own data (store_profile.py): name, CUIT, address, phone, e-mail
STORE_CUIT = "tienda.cuit"
STORE_ADDRESS = "tienda.direccion"
STORE_PHONE = "tienda.telefono"
STORE_EMAIL = "tienda.email"
ALERT_EMAILS = "alertas.emails"  # comma-separated addresses that get the alert e-mails (`minimarket alerts emails`)


class StoreSetting(Base):
    """One store setting, key → text value."""

    __tablename__ = "ajustes"

    key: Mapped[str] = mapped_column("clave", String(100), primary_key=True)
    value: Mapped[str | None] = mapped_column("valor", Text)
    updated_at: Mapped[datetime] = mapped_column("actualizado_en", Timestamp, default=utcnow)


_READ_ALL = "ajustes_leidos"  # session.info: every setting, read once by read_all (a page that shows many)


def read_value(session: Session, key: str) -> str | None:
    """The stored text of `key`, or None when the store never set it."""
    known = session.info.get(_READ_ALL)
    if known is not None:
        return known.get(key)
    return session.scalar(select(StoreSetting.value).where(StoreSetting.key == key))


def read_values(session: Session, *keys: str) -> dict[str, str | None]:
    """The stored text of each of `keys` (None when never set), in one statement."""
    table = StoreSetting.__table__
    found = dict(session.execute(select(table.c.clave, table.c.valor).where(table.c.clave.in_(keys))).all())
    return {key: found.get(key) for key in keys}


def read_all(session: Session) -> None:
    """Read every setting in one statement; `read_value` in this session answers from it from now on (a page
    that shows a dozen settings, as Configuración, reads the small table once instead of once a setting).
    `write_value` in the same session keeps it current."""
    session.info[_READ_ALL] = dict(session.execute(select(StoreSetting.key, StoreSetting.value)).all())


def value_query(key: str):  # noqa: ANN201
    """`read_value` as a scalar subquery, to read a setting in the same statement as other rows."""
    return select(StoreSetting.value).where(StoreSetting.key == key).scalar_subquery()


def write_value(session: Session, key: str, value: str) -> None:
    """Set `key` (insert or update) in the caller's unit of work."""
    row = session.get(StoreSetting, key)
    if row is None:
        session.add(StoreSetting(key=key, value=value, updated_at=utcnow()))
    else:
        row.value, row.updated_at = value, utcnow()
    known = session.info.get(_READ_ALL)
    if known is not None:
        known[key] = value


def read_value_from(db: Database, key: str) -> str | None:
    """`read_value` in a read unit of its own (scrape-time gauges, the doctor)."""
    with db.read() as session:
        return read_value(session, key)


def parse_flag(value: str | None, *, default: bool) -> bool:
    """A yes/no setting as text; unset means `default`."""
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "si", "sí", "yes")

"""Inicio's aggregates, kept current by database triggers in the transaction of every write
(migration 0013): the stock figures and, per store day, the movements and sales.

Both tables hold *delta rows*: a trigger inserts what a statement changed (never updates a shared row,
so concurrent movements never wait for each other), and a reader sums the rows; reports.kpis folds them
into one row (per day) now and then. They are derived: `migrate-to` leaves them to the triggers.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Date, Numeric
from sqlalchemy.orm import Mapped, mapped_column

from minimarket.db import Base
from minimarket.types import BigId

# Money × quantity in units of 10⁻⁵ peso, an integer: exact sums on SQLite too (its NUMERIC is a float).
Units = Numeric(38, 0, asdecimal=True)
Amount = Numeric(24, 5, asdecimal=True)


class KpiStock(Base):
    """Active products, those at or below their minimum, those without stock, stock value at cost and at price."""

    __tablename__ = "kpi_existencias"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    active: Mapped[int] = mapped_column("activos", BigId, default=0)
    below_minimum: Mapped[int] = mapped_column("bajo_minimo", BigId, default=0)
    out_of_stock: Mapped[int] = mapped_column("sin_stock", BigId, default=0)
    value_cost: Mapped[Decimal] = mapped_column("valor_costo_e5", Units, default=0)
    value_price: Mapped[Decimal] = mapped_column("valor_precio_e5", Units, default=0)


class KpiDay(Base):
    """Per store day (Buenos Aires): movements, units in, and sales (units, charged, net of IVA, at cost)."""

    __tablename__ = "kpi_dias"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column("dia", Date, index=True)
    movements: Mapped[int] = mapped_column("movimientos", BigId, default=0)
    units_in: Mapped[Decimal] = mapped_column("entradas", Numeric(20, 3), default=0)
    units_sold: Mapped[Decimal] = mapped_column("ventas_unidades", Numeric(20, 3), default=0)
    sales_amount: Mapped[Decimal] = mapped_column("ventas_importe", Amount, default=0)
    sales_net: Mapped[Decimal] = mapped_column("ventas_neto", Amount, default=0)
    sales_cost: Mapped[Decimal] = mapped_column("ventas_costo", Amount, default=0)

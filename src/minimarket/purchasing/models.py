"""Stored forecasts (pronosticos): one row per product per computation day."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from minimarket.db import Base
from minimarket.types import Timestamp, utcnow


class Forecast(Base):
    """The chosen method's daily rate and weekday profile (Monday first, mean 1) for a product,
    with its rolling-origin backtest error; the forecast for a day is rate × profile[weekday]."""

    __tablename__ = "pronosticos"
    __table_args__ = (UniqueConstraint("producto_id", "fecha_calculo", name="uq_pronosticos_producto_fecha"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column("producto_id", ForeignKey("productos.id", ondelete="CASCADE"))
    computed_on: Mapped[date] = mapped_column("fecha_calculo", Date, index=True)
    daily_rate: Mapped[float] = mapped_column("tasa_diaria", Float)
    weekday_profile: Mapped[list] = mapped_column("perfil_semanal", JSON)
    method: Mapped[str] = mapped_column("metodo", String(30))
    backtest_mae: Mapped[float | None] = mapped_column("error_backtest", Float)  # units/day, None = not measurable
    backtest_wape: Mapped[float | None] = mapped_column("wape_backtest", Float)
    history_days: Mapped[int] = mapped_column("dias_historia", Integer)
    observed_days: Mapped[int] = mapped_column("dias_observados", Integer)  # not censored by stock-outs
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow)

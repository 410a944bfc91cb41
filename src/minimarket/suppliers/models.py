"""Suppliers (proveedores). The foundation keeps name and CUIT; the suppliers area grows it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from minimarket.db import Base
from minimarket.types import Timestamp, utcnow


class Supplier(Base):
    __tablename__ = "proveedores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column("nombre", String(200), unique=True)
    cuit: Mapped[str | None] = mapped_column(String(11), unique=True)
    active: Mapped[bool] = mapped_column("activo", Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow)

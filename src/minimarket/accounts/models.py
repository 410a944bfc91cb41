"""Users, API keys and the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from minimarket.db import Base
from minimarket.types import BigId, Timestamp, utcnow

ROLES = ("admin", "encargado", "deposito", "lectura")


class User(Base):
    __tablename__ = "usuarios"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column("usuario", String(60), unique=True)
    full_name: Mapped[str | None] = mapped_column("nombre", String(120))
    role: Mapped[str] = mapped_column("rol", String(20))
    password_hash: Mapped[str | None] = mapped_column("hash_password", String(200))
    active: Mapped[bool] = mapped_column("activo", Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow)


class ApiKey(Base):
    """An API key. Only its SHA-256 is stored; the key is shown once when created."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column("nombre", String(80))
    prefix: Mapped[str] = mapped_column("prefijo", String(16), unique=True)
    key_hash: Mapped[str] = mapped_column("hash", String(64))
    role: Mapped[str] = mapped_column("rol", String(20))
    user_id: Mapped[int | None] = mapped_column("usuario_id", ForeignKey("usuarios.id"))
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column("ultimo_uso", Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column("revocada_en", Timestamp)


class AuditEntry(Base):
    """Append-only: who changed what, with the state before and after."""

    __tablename__ = "auditoria"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120), index=True)
    action: Mapped[str] = mapped_column("accion", String(60))
    entity: Mapped[str] = mapped_column("entidad", String(60))
    entity_id: Mapped[str | None] = mapped_column("entidad_id", String(100))
    before: Mapped[dict | None] = mapped_column("antes", JSON)
    after: Mapped[dict | None] = mapped_column("despues", JSON)
    request_id: Mapped[str | None] = mapped_column(String(64))

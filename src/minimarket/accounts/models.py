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
    # Consecutive failed logins and the lock-out they earned (accounts/users.py: back-off).
    failed_logins: Mapped[int] = mapped_column("intentos_fallidos", Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column("bloqueado_hasta", Timestamp)
    last_login_at: Mapped[datetime | None] = mapped_column("ultimo_ingreso", Timestamp)


class WebSession(Base):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is the id."""

    __tablename__ = "sesiones"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column("usuario_id", ForeignKey("usuarios.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column("creada_en", Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column("expira_en", Timestamp, index=True)
    last_seen_at: Mapped[datetime] = mapped_column("ultima_actividad", Timestamp, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64))


class ApiKey(Base):
    """An API key. Only its SHA-256 is stored; the key is shown once when created."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column("nombre", String(80))
    prefix: Mapped[str] = mapped_column("prefijo", String(16), unique=True)
    key_hash: Mapped[str] = mapped_column("hash", String(64))
    role: Mapped[str] = mapped_column("rol", String(20))
    user_id: Mapped[int | None] = mapped_column("usuario_id", ForeignKey("usuarios.id"), index=True)
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

"""The store's secrets, encrypted at rest: one row (id = 1) in `system_config`.

Each column holds a blob of `minimarket.platform.crypto` (AES-256-CBC + HMAC-SHA256 under
DATABASE_ENCRYPTION_KEY) or NULL when the secret is not set. PostgreSQL reads the same blobs
with `decrypt_data(col, key)` (migration 0002). Store settings live in `ajustes` (store_settings.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from minimarket.db import Base
from minimarket.types import Timestamp, utcnow

SINGLE_ROW_ID = 1


class SystemSecrets(Base):
    __tablename__ = "system_config"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    api_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    smtp_password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    webhook_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    alertmanager_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column("actualizado_en", Timestamp, default=utcnow, onupdate=utcnow)

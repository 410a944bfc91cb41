"""Which roles may do what. Routers name a permission, never a list of roles."""

from __future__ import annotations

READ = frozenset({"admin", "encargado", "deposito", "lectura"})
STOCK_WRITE = frozenset({"admin", "encargado", "deposito"})
CATALOG_WRITE = frozenset({"admin", "encargado"})
ADMIN = frozenset({"admin"})

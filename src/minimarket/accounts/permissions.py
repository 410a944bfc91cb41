"""Which roles may do what. Routers name a permission, never a list of roles."""

from __future__ import annotations

READ = frozenset({"admin", "encargado", "deposito", "lectura"})
STOCK_WRITE = frozenset({"admin", "encargado", "deposito"})
CATALOG_WRITE = frozenset({"admin", "encargado"})
ADMIN = frozenset({"admin"})
# Selling a line further below the shelf price than the store's `ventas.descuento_maximo`.
SELL_BELOW_LIMIT = frozenset({"admin", "encargado"})

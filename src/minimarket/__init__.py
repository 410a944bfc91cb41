"""Mini Market: inventario, precios y operaciones para minimercados."""

__version__ = "0.1.0"

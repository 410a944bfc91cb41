"""ASGI entry point for process managers (`uvicorn minimarket.asgi:app`); MINIMARKET_SERVICE picks the service."""

import os

from minimarket.apps import create_app

app = create_app(os.environ.get("MINIMARKET_SERVICE", "all"))

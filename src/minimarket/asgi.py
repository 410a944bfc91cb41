"""ASGI entry point for process managers and `serve --workers N`: `uvicorn minimarket.asgi:app`.

MINIMARKET_SERVICE picks the service (all | dashboard | deposito | negocio).
"""

import os

from minimarket.apps import create_app
from minimarket.config import get_settings
from minimarket.platform.heap import settle_heap
from minimarket.platform.logging import configure_logging

_service = os.environ.get("MINIMARKET_SERVICE", "all")
configure_logging(get_settings().log_level, service=_service)
app = create_app(_service)
settle_heap()  # platform/heap.py: start-up's objects out of every later collection

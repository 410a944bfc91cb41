"""configure_logging changes process-wide state; tests that call it put every bit of it back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@contextmanager
def preserved_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved_libs = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
                  for name in LIBRARY_LOGGERS}
    saved_structlog = structlog.get_config()
    saved_context = structlog.contextvars.get_contextvars()
    try:
        yield
    finally:
        root.handlers = saved_root[0]
        root.setLevel(saved_root[1])
        for name, (handlers, propagate) in saved_libs.items():
            logging.getLogger(name).handlers = handlers
            logging.getLogger(name).propagate = propagate
        structlog.configure(**saved_structlog)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**saved_context)

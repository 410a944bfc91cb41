"""JSON log lines on stdout (structlog), one shape for the app's and the libraries' records."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

# The fields an access line carries; promtail's JSON stage reads exactly these.
LOG_FIELDS = ("timestamp", "level", "message", "service", "request_id", "method", "path", "endpoint", "status",
              "duration_ms", "actor")
_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|api[_-]?key|authorization|encryption_key|cookie", re.I)
# Credentials inside URLs (postgresql://user:pass@host) never reach a log line.
# The user part may be empty: redis://:password@host is how Redis URLs carry a password.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]+@")


_SECRET_KEY_SEEN: dict[str, bool] = {}  # key -> whether it names a secret: a line has ~10 keys, from a small set


def _is_secret_key(key: str) -> bool:
    found = _SECRET_KEY_SEEN.get(key)
    if found is None:
        found = _SECRET_KEYS.search(key) is not None
        if len(_SECRET_KEY_SEEN) < 4096:
            _SECRET_KEY_SEEN[key] = found
    return found


def _redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event.items()):
        if _is_secret_key(key):
            event[key] = "***"
        elif isinstance(value, str) and "://" in value:
            event[key] = _URL_PASSWORD.sub(r"\1***@", value)
    return event


def configure_logging(level: str = "INFO", service: str = "minimarket") -> None:
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    structlog.configure(
        # filter_by_level first: a line below LOG_LEVEL costs a level check, not a timestamp and a dict merge.
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    structlog.contextvars.bind_contextvars(service=service)

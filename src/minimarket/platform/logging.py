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


class _Installed:
    """What configure_logging set up: its structlog chain, the processors around it, its handler."""

    def __init__(self, chain: list, shared: list, final: list, handler: logging.StreamHandler):
        self.chain, self.shared, self.final, self.handler = tuple(chain), shared, final, handler


_INSTALLED: _Installed | None = None


def print_info(logger: logging.Logger, event: str, **fields: Any) -> bool:
    """An INFO line of `logger` with `fields`, printed exactly as configure_logging's handler prints a
    structlog line (the same processors: context, level, timestamp, redaction, renaming, JSON) but straight
    to its stream, without the stdlib round trip (bound logger, record, handler lookup, formatter: ~2/3 of
    a line's cost; it is one per request). True: printed, or dropped by the level. False: logging is not
    as configure_logging left it (a test capturing logs, a host app's own handlers): log it the usual way."""
    installed = _INSTALLED
    root = logging.root
    # By content: structlog.testing.capture_logs swaps the processors inside the same list.
    if (installed is None or tuple(structlog.get_config()["processors"]) != installed.chain
            or len(root.handlers) != 1 or root.handlers[0] is not installed.handler
            or logger.handlers or logger.filters or root.filters or installed.handler.filters):
        return False
    if not logger.isEnabledFor(logging.INFO):
        return True
    line: Any = {**fields, "event": event}
    for processor in installed.shared:
        line = processor(logger, "info", line)
    line["_record"], line["_from_structlog"] = None, True  # as ProcessorFormatter hands it to its processors
    for processor in installed.final:
        line = processor(logger, "info", line)
    handler = installed.handler
    handler.acquire()
    try:
        handler.stream.write(line + handler.terminator)
        handler.flush()
    except (OSError, ValueError):  # stdout gone: as logging.Handler.handleError, never the request's failure
        pass
    finally:
        handler.release()
    return True


def configure_logging(level: str = "INFO", service: str = "minimarket") -> None:
    global _INSTALLED  # noqa: PLW0603 - process-wide, like the logging configuration itself
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    # filter_by_level first: a line below LOG_LEVEL costs a level check, not a timestamp and a dict merge.
    chain = [structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter]
    structlog.configure(
        processors=chain,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    final = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        _redact,
        structlog.processors.EventRenamer("message"),
        structlog.processors.JSONRenderer(ensure_ascii=False),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    _INSTALLED = _Installed(chain, shared, final, handler)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    structlog.contextvars.bind_contextvars(service=service)

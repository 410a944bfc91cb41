"""configure_logging: one JSON object per stdout line, for structlog and stdlib records alike, secrets masked."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import structlog

from minimarket.platform.logging import LOG_FIELDS, configure_logging
from tests.logging_state import preserved_logging



@pytest.fixture(autouse=True)
def _restore_logging():  # noqa: ANN202
    with preserved_logging():
        yield


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    out = capsys.readouterr().out
    records = []
    for line in out.splitlines():
        record = json.loads(line)  # every line, whoever wrote it, is one JSON object
        assert isinstance(record, dict), line
        records.append(record)
    return records


def assert_base_shape(record: dict, *, level: str, service: str) -> None:
    for field in ("timestamp", "level", "message", "service"):
        assert field in record, f"{field!r} missing from {record}"
    assert "event" not in record, record  # renamed to message, never both
    stamp = datetime.fromisoformat(record["timestamp"])
    assert record["timestamp"].endswith(("Z", "+00:00")), record["timestamp"]
    assert stamp.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)
    assert record["level"] == level
    assert record["service"] == service


def test_structlog_and_stdlib_records_become_one_json_line_each(capsys):
    configure_logging("INFO", service="deposito")
    structlog.get_logger("minimarket.test").info("stock_loaded", sku="YERBA-1", quantity=3)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 4242)
    logging.getLogger("uvicorn.error").error("Exception in ASGI application")
    structlog.get_logger("minimarket.test").debug("below_the_level")  # INFO drops debug
    logging.getLogger("uvicorn.error").debug("below the level too")

    records = lines(capsys)
    assert [r["message"] for r in records] == ["stock_loaded", "Started server process [4242]",
                                               "Exception in ASGI application"]
    ours, started, failed = records
    assert_base_shape(ours, level="info", service="deposito")
    assert (ours["sku"], ours["quantity"]) == ("YERBA-1", 3)
    assert_base_shape(started, level="info", service="deposito")
    assert_base_shape(failed, level="error", service="deposito")


def test_the_level_setting_is_applied(capsys):
    configure_logging("warning", service="negocio")
    structlog.get_logger("minimarket.test").info("quiet")
    logging.getLogger("uvicorn.error").info("quiet too")
    structlog.get_logger("minimarket.test").warning("loud")
    records = lines(capsys)
    assert [r["message"] for r in records] == ["loud"]
    assert_base_shape(records[0], level="warning", service="negocio")


def test_library_handlers_are_replaced_so_nothing_is_printed_twice(capsys):
    stray = logging.StreamHandler()
    logging.getLogger("uvicorn.error").addHandler(stray)
    logging.getLogger("uvicorn").propagate = False
    configure_logging("INFO", service="all")
    assert stray not in logging.getLogger("uvicorn.error").handlers
    logging.getLogger("uvicorn.error").info("once")
    records = lines(capsys)
    assert [r["message"] for r in records] == ["once"]


SECRET = "s3cr3t-Valor-99"


@pytest.mark.parametrize("key", ["password", "db_password", "PASSWORD", "passwd_hint", "secret", "client_secret",
                                 "token", "refresh_token", "api_key", "api-key", "apikey", "X-API-Key",
                                 "authorization", "Authorization", "encryption_key", "cookie"])
def test_secret_keys_are_masked(capsys, key):
    configure_logging("INFO", service="all")
    structlog.get_logger("minimarket.test").info("with_secret", **{key: SECRET, "sku": "YERBA-1"})
    [record] = lines(capsys)
    assert record[key] == "***"
    assert record["sku"] == "YERBA-1"  # ordinary fields are untouched
    assert SECRET not in json.dumps(record)


def test_secret_keys_from_stdlib_extra_are_masked(capsys):
    configure_logging("INFO", service="all")
    logging.getLogger("uvicorn.error").info("with extras", extra={"token": SECRET, "authorization": f"Bearer {SECRET}"})
    out = capsys.readouterr().out
    assert SECRET not in out
    [record] = [json.loads(line) for line in out.splitlines()]
    assert record["message"] == "with extras"


@pytest.mark.parametrize(("raw", "masked"), [
    ("postgresql://user:secret@host/db", "postgresql://user:***@host/db"),
    ("postgresql+psycopg://minimarket:s3cr3t@db.local:5432/minimarket?sslmode=require",
     "postgresql+psycopg://minimarket:***@db.local:5432/minimarket?sslmode=require"),
    ("redis://:secret@redis:6379/0", "redis://:***@redis:6379/0"),
    ("no se pudo conectar a postgresql://user:secret@host/db (timeout)",
     "no se pudo conectar a postgresql://user:***@host/db (timeout)"),
    ("postgresql://user@host/db", "postgresql://user@host/db"),  # nothing to hide
    ("https://example.com/a:b", "https://example.com/a:b"),
])
def test_passwords_inside_urls_are_masked(capsys, raw, masked):
    configure_logging("INFO", service="all")
    structlog.get_logger("minimarket.test").info("connecting", url=raw)
    logging.getLogger("uvicorn.error").info("connecting to %s", raw)  # in the message of a library record too
    ours, library = lines(capsys)
    assert ours["url"] == masked
    assert library["message"] == f"connecting to {masked}"


def test_an_exception_text_with_a_database_url_is_masked(capsys):
    configure_logging("INFO", service="all")
    try:
        raise ConnectionError("connection to postgresql://minimarket:hunter2@db:5432/minimarket failed")
    except ConnectionError:
        structlog.get_logger("minimarket.test").exception("database_down")
        logging.getLogger("uvicorn.error").exception("library saw it too")
    out = capsys.readouterr().out
    assert "hunter2" not in out
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["message"] for r in records] == ["database_down", "library saw it too"]
    for record in records:
        assert record["level"] == "error"
        assert "postgresql://minimarket:***@db:5432/minimarket" in record["exception"]
        assert "ConnectionError" in record["exception"]


def test_log_fields_are_the_access_line_contract():
    assert len(LOG_FIELDS) == len(set(LOG_FIELDS))
    assert set(LOG_FIELDS) == {"timestamp", "level", "message", "service", "request_id", "method", "path",
                               "endpoint", "status", "duration_ms", "actor"}


def test_restoring_after_configure_leaves_no_service_binding():
    """Guards the fixture: the contextvars this module binds must not leak into later tests."""
    assert "service" not in structlog.contextvars.get_contextvars()


def test_print_info_prints_the_line_the_usual_path_prints(capsys):
    """The access line's shortcut (platform.logging.print_info) prints what structlog through the stdlib
    handler prints: same keys in the same order, same values, redaction and context included."""
    from minimarket.platform.logging import print_info

    configure_logging("INFO", service="dashboard")
    fields = {"method": "GET", "path": "/api/x/postgresql://u:secreto@h/db", "endpoint": "/api/x/{y}", "status": 200,
              "duration_ms": 1.25, "actor": None}
    structlog.contextvars.bind_contextvars(request_id="abc123")
    try:
        structlog.get_logger("minimarket.http").info("request", **fields)
        assert print_info(logging.getLogger("minimarket.http"), "request", **fields) is True
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    usual, direct = lines(capsys)
    assert list(direct) == list(usual)
    assert {**direct, "timestamp": None} == {**usual, "timestamp": None}
    assert direct["path"] == "/api/x/postgresql://u:***@h/db" and direct["request_id"] == "abc123"
    assert_base_shape(direct, level="info", service="dashboard")


def test_print_info_drops_below_the_level_and_steps_aside_when_logging_is_not_its_own(capsys):
    from minimarket.platform.logging import print_info

    http = logging.getLogger("minimarket.http")
    configure_logging("WARNING", service="all")
    assert print_info(http, "request", status=200) is True  # handled: dropped by the level
    assert lines(capsys) == []
    configure_logging("INFO", service="all")
    with structlog.testing.capture_logs() as captured:
        assert print_info(http, "request", status=200) is False  # a test capturing logs sees it the usual way
    assert captured == []
    logging.getLogger().addHandler(logging.NullHandler())  # a host app's handler beside ours
    assert print_info(http, "request", status=200) is False

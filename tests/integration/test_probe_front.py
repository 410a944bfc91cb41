"""GET /health and /health/live are answered by ProbeFront, before FastAPI's routing: the answers,
headers, metrics and log lines must be exactly those of the documented routes behind it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
import structlog
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import create_api_key
from minimarket.apps import create_app
from minimarket.platform.http import ObservedApp
from minimarket.platform.service_routes import ProbeFront
from tests.helpers import make_settings
from tests.logging_state import preserved_logging

DEAD_PEER = "http://127.0.0.1:9"  # discard port: nothing answers, so /health has an error to hide
# What may differ between two answers to the same request: when it was sent and its generated id.
VARIABLE = {"date", "x-request-id"}


def _without_front(app):  # noqa: ANN001, ANN202
    app.user_middleware = [m for m in app.user_middleware if m.cls is not ProbeFront]
    return app


@pytest.fixture
def pair(database_url: str) -> Iterator[tuple[TestClient, TestClient, dict[str, str]]]:
    """The app as served (with ProbeFront) and the same app without it, on one database."""
    settings = make_settings(database_url, deposito_url=DEAD_PEER)
    fronted, routed = create_app("dashboard", settings), _without_front(create_app("dashboard", settings))
    assert ProbeFront in [m.cls for m in fronted.user_middleware]
    try:
        with TestClient(fronted, follow_redirects=False) as a, TestClient(routed, follow_redirects=False) as b:
            with fronted.state.db.write() as session:
                _, key = create_api_key(session, Context(actor="test"), name="lectura", role="lectura")
            yield a, b, {"X-API-Key": key}
    finally:
        fronted.state.db.dispose()
        routed.state.db.dispose()


def _requests(key: dict[str, str]) -> list[tuple[str, str, dict[str, str]]]:
    return [
        ("GET", "/health/live", {}),
        ("GET", "/health", {}),
        ("GET", "/health?detalle=1", {}),
        ("GET", "/health", key),
        ("GET", "/health", {"X-API-Key": "mm_dead0000.nada"}),
        ("GET", "/health", {"X-API-Key": "", "Authorization": "Bearer " + "x" * 32}),
        ("GET", "/health/live", {"X-Request-ID": "sonda-balanceador"}),
        ("HEAD", "/health", {}),
        ("HEAD", "/health/live", {}),
        ("POST", "/health", {}),
        ("PUT", "/health/live", {}),
        ("GET", "/health/", {}),
        ("GET", "/health/live/", {}),
        ("GET", "/health/livex", {}),
    ]


def _answer(response) -> tuple:  # noqa: ANN001
    """Status, body and headers, with what is measured per check (a latency, so the length) set aside."""
    if "content-length" in response.headers and response.request.method != "HEAD":
        assert int(response.headers["content-length"]) == len(response.content)
    headers = sorted((k, v) for k, v in response.headers.items() if k not in VARIABLE | {"content-length"})
    return response.status_code, re.sub(rb'"latency_ms":[0-9.]+', b'"latency_ms":0', response.content), headers


def _series() -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in REGISTRY.collect() if family.name.startswith("http_request")
            for s in family.samples if s.labels.get("service") == "dashboard" and not s.name.endswith("_bucket")}


def _counted(client: TestClient, method: str, path: str, headers: dict[str, str]) -> tuple:  # noqa: ANN001
    """One request: its answer, the metric series it moved and its access log line."""
    before = _series()
    with capture_logs() as logs:
        response = client.request(method, path, headers=headers)
    after = _series()
    moved = sorted((name, labels) for (name, labels), value in after.items()
                   if value != before.get((name, labels)) and name.endswith(("_total", "_count")))
    lines = [{k: line[k] for k in ("method", "path", "endpoint", "status")}
             for line in logs if line["event"] == "request"]
    return response, moved, lines


def test_the_front_answers_exactly_like_the_documented_routes(pair) -> None:  # noqa: ANN001
    fronted, routed, key = pair
    for method, path, headers in _requests(key):
        front_response, front_metrics, front_log = _counted(fronted, method, path, headers)
        route_response, route_metrics, route_log = _counted(routed, method, path, headers)
        where = f"{method} {path} {sorted(headers)}"
        assert _answer(front_response) == _answer(route_response), where
        assert front_metrics == route_metrics and front_metrics, where
        assert front_log == route_log and len(front_log) == 1, where


def test_the_front_keeps_headers_request_id_and_details(pair) -> None:  # noqa: ANN001
    fronted, _, key = pair
    live = fronted.get("/health/live", headers={"X-Request-ID": "sonda-1"})
    assert live.status_code == 200 and live.json() == {"status": "ok", "service": "dashboard"}
    assert live.headers["x-request-id"] == "sonda-1"
    assert live.headers["x-content-type-options"] == "nosniff" and live.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in live.headers["content-security-policy"]
    assert re.fullmatch(r"[0-9a-f]{32}", fronted.get("/health/live").headers["x-request-id"])
    anonymous = fronted.get("/health")
    assert anonymous.status_code == 503 and anonymous.json()["failing"] == ["peer:deposito"]
    assert DEAD_PEER not in anonymous.text and "error" not in anonymous.json()["checks"]["peer:deposito"]
    detailed = fronted.get("/health", headers=key)
    assert detailed.json()["checks"]["peer:deposito"]["url"] == DEAD_PEER
    assert detailed.json()["checks"]["peer:deposito"]["error"]
    assert fronted.head("/health").status_code == 405 and fronted.head("/health").headers["allow"] == "GET"


def test_health_stays_in_the_openapi_document(pair) -> None:  # noqa: ANN001
    fronted, _, _ = pair
    paths = fronted.get("/openapi.json").json()["paths"]
    assert set(paths["/health"]) == {"get"} and set(paths["/health/live"]) == {"get"}


def test_the_front_needs_the_operator_router() -> None:
    from fastapi import APIRouter

    with pytest.raises(ValueError, match="service_router"):
        ProbeFront(None, probes=None, router=APIRouter())


def test_the_access_line_is_skipped_only_when_its_level_drops_it(client) -> None:  # noqa: ANN001
    """configure_logging at WARNING: no line is built (filter_by_level would drop it); at INFO one line
    per request; structlog unconfigured (its defaults print everything): the line is built."""
    from minimarket.platform.http import _access_line_wanted
    from minimarket.platform.logging import configure_logging

    with preserved_logging():
        configure_logging("WARNING", service="test")
        assert not _access_line_wanted()
        configure_logging("INFO", service="test")
        assert _access_line_wanted()
        structlog.reset_defaults()
        assert _access_line_wanted()


@pytest.mark.parametrize("query", [b"q=%00", b"a=1&b=x%00y", b"\x00=1"])
def test_a_nul_in_the_query_is_still_refused(app, query: bytes) -> None:  # noqa: ANN001
    """Straight through ASGI: an HTTP client refuses to send a raw NUL, a raw socket need not."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/health/live", "raw_path": b"/health/live", "query_string": query, "root_path": "",
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 422 and b"NUL" in sent[1]["body"], sent
    assert (b"x-content-type-options", b"nosniff") in sent[0]["headers"]


def test_an_encoded_percent_is_not_a_nul(client) -> None:  # noqa: ANN001
    assert client.get("/health/live?q=%2500").status_code == 200


def test_metric_series_past_the_cache_are_still_counted(database_url: str) -> None:
    settings = make_settings(database_url)
    app = create_app("negocio", settings)
    try:
        with TestClient(app) as client:
            client.get("/health/live")  # builds the middleware stack
            observed = app.middleware_stack
            while not isinstance(observed, ObservedApp):
                observed = observed.app
            observed.MAX_SERIES = len(observed._series)  # full: every new series goes to prometheus' lookup

            def count(status: str) -> float:
                return REGISTRY.get_sample_value("http_requests_total", {
                    "service": "negocio", "method": "GET", "endpoint": "/health/live", "status": status}) or 0.0

            def missing() -> float:
                return REGISTRY.get_sample_value("http_requests_total", {
                    "service": "negocio", "method": "GET", "endpoint": "<sin_ruta>", "status": "404"}) or 0.0

            ok, unmatched = count("200"), missing()
            for _ in range(3):
                client.get("/health/live")
                client.get("/no-existe")
            assert count("200") - ok == 3 and missing() - unmatched == 3
    finally:
        app.state.db.dispose()


def test_answers_before_routing_are_labelled_without_building_the_openapi_schema(database_url: str) -> None:
    """A 401 from the caller gate (and 429, 413) is counted under its route's template from the table
    create_app lists; app.openapi() is never built on the event loop for it (it took seconds when loaded)."""
    app = create_app("deposito", make_settings(database_url))

    def no_schema() -> dict:
        raise AssertionError("app.openapi() built to label an answer given before routing")

    try:
        app.openapi = no_schema
        with TestClient(app) as client:
            def refused(endpoint: str, method: str) -> float:
                return REGISTRY.get_sample_value("http_requests_total", {
                    "service": "deposito", "method": method, "endpoint": endpoint, "status": "401"}) or 0.0

            before = (refused("/api/inventory/{sku}", "GET"), refused("/api/inventory/{sku}/movements", "POST"),
                      refused("<sin_ruta>", "GET"))
            assert client.get("/api/inventory/ABC-1").status_code == 401
            assert client.post("/api/inventory/ABC-1/movements", json={}).status_code == 401
            assert client.get("/api/no-existe").status_code == 401
            after = (refused("/api/inventory/{sku}", "GET"), refused("/api/inventory/{sku}/movements", "POST"),
                     refused("<sin_ruta>", "GET"))
            assert [b - a for a, b in zip(before, after)] == [1, 1, 1]
    finally:
        app.state.db.dispose()

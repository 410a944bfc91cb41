"""Prometheus metrics every service emits (names are the runbook's contract)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

# Buckets dense around the 300 ms latency objective so P95 is read precisely there.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by service, method, route template and status",
    ["service", "method", "endpoint", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration by service, method and route template",
    ["service", "method", "endpoint"],
    buckets=LATENCY_BUCKETS,
)
STOCK_MOVEMENTS = Counter(
    "minimarket_stock_movements_total",
    "Movements appended to the stock ledger, by type",
    ["type"],
)
STOCK_REFUSED = Counter(
    "minimarket_stock_refused_total",
    "Stock writes refused because stock would go negative",
)


def render_metrics() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST

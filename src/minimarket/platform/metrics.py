"""Prometheus metrics every service emits (names are the runbook's and the alerts' contract).

Request and ledger counters live in the process-wide registry (or, with several Uvicorn
workers, in prometheus-client's multiprocess files when PROMETHEUS_MULTIPROC_DIR is set).
Health and business gauges are computed at scrape time by each app's StoreCollector.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

disable_created_metrics()  # `_created` series double the output and no query here uses them

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
    "Movements appended to the stock ledger (committed), by type",
    ["type"],
)
STOCK_REFUSED = Counter(
    "minimarket_stock_refused_total",
    "Stock writes refused because stock would go negative",
)
MOVEMENTS_ON_LOOP = Counter(
    "minimarket_stock_movements_on_loop_total",
    "POST /api/inventory/{sku}/movements on PostgreSQL: recorded on the event loop, or handed to the route "
    "(a refusal, a key already taken, an unusual request)",
    ["outcome"],
)
for _outcome in ("recorded", "route"):
    MOVEMENTS_ON_LOOP.labels(_outcome)
SALES_TICKETS = Counter("minimarket_sales_tickets_total", "POS tickets recorded (committed)")
SALES_REVENUE = Counter("minimarket_sales_revenue_pesos_total", "Revenue of recorded POS tickets, in pesos with IVA")
CACHE_HITS = Counter("minimarket_cache_hits_total", "Cache reads that found a value", ["backend"])
CACHE_MISSES = Counter("minimarket_cache_misses_total", "Cache reads that found nothing", ["backend"])


def render_metrics(app_registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """Exposition text: process-wide counters (merged across workers if multiprocess) + the app's gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shared = CollectorRegistry()
        MultiProcessCollector(shared)
    else:
        shared = REGISTRY
    payload = generate_latest(shared)
    if app_registry is not None:
        payload += generate_latest(app_registry)
    return payload, CONTENT_TYPE_LATEST

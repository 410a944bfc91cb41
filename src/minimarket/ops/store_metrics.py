"""Gauges computed when Prometheus scrapes: health of dependencies, stock state, ledger
verification, backups, certificates, memory and build info."""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Iterable
from pathlib import Path

import structlog
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from minimarket import __version__, store_settings
from minimarket.db import Database
from minimarket.platform.cache import Cache
from minimarket.platform.resources import memory_limit_bytes, memory_usage_bytes
from minimarket.stock.inventory import stock_summary

log = structlog.get_logger("minimarket.metrics")

STOCK_CACHE_KEY = "metrics:stock"
STOCK_CACHE_TTL = 15  # replicas scraped together share one aggregate query


def stock_cache_key(database_url: str) -> str:
    return f"{STOCK_CACHE_KEY}:{hashlib.sha256(database_url.encode()).hexdigest()[:16]}"


class StoreCollector(Collector):
    def __init__(self, *, service: str, db: Database, cache: Cache, cert_files: Iterable[Path]):
        self.service = service
        self.db = db
        self.cache = cache
        self.cert_files = list(cert_files)
        # Stores that share one Redis must not share their stock gauges.
        self._stock_key = stock_cache_key(db.url)

    def _stock_summary(self) -> dict[str, int]:
        with self.db.read() as session:
            return stock_summary(session)

    def collect(self):  # noqa: ANN201
        yield from self._database()
        yield from self._cache()
        yield from self._stock()
        yield from self._ledger_and_backup()
        yield from self._certificates()
        yield from self._memory()
        info = InfoMetricFamily("minimarket_build", "Version of the running code")
        info.add_metric([], {"version": __version__, "python": platform.python_version(), "service": self.service})
        yield info

    def _database(self):  # noqa: ANN202
        up = GaugeMetricFamily("minimarket_database_up", "1 if the database answered the probe", labels=["service"])
        latency = GaugeMetricFamily("minimarket_database_query_seconds", "Latency of the SELECT 1 probe",
                                    labels=["service"])
        start = time.perf_counter()
        try:
            self.db.ping()
            up.add_metric([self.service], 1)
            latency.add_metric([self.service], time.perf_counter() - start)
        except Exception:  # noqa: BLE001 - a failed probe is the measurement
            up.add_metric([self.service], 0)
        yield up
        yield latency

    def _cache(self):  # noqa: ANN202
        up = GaugeMetricFamily("minimarket_cache_up", "1 if the cache answered a ping", labels=["service", "backend"])
        try:
            self.cache.ping()
            up.add_metric([self.service, self.cache.kind], 1)
        except Exception:  # noqa: BLE001
            up.add_metric([self.service, self.cache.kind], 0)
        yield up

    def _stock(self):  # noqa: ANN202
        summary = self.cache.get_json(self._stock_key)
        if summary is None:
            try:
                summary = self._stock_summary()
            except Exception as exc:  # noqa: BLE001 - no database, no business gauges this scrape
                log.warning("stock_metrics_failed", error=str(exc).splitlines()[0][:200])
                return
            self.cache.set_json(self._stock_key, summary, STOCK_CACHE_TTL)
        for name, key, help_text in (
            ("minimarket_products_active", "active", "Active products"),
            ("minimarket_products_below_minimum", "below_minimum", "Active products with stock at or below minimum"),
            ("minimarket_products_out_of_stock", "out_of_stock", "Active products without stock"),
        ):
            yield GaugeMetricFamily(name, help_text, value=summary[key])

    def _ledger_and_backup(self):  # noqa: ANN202
        try:
            verify = store_settings.read_value_from(self.db, store_settings.LAST_VERIFY)
            backup = store_settings.read_value_from(self.db, store_settings.LAST_BACKUP)
        except Exception:  # noqa: BLE001
            return
        if verify:
            result = json.loads(verify)
            yield GaugeMetricFamily("minimarket_ledger_mismatches", "Balances that differed from the ledger "
                                    "in the last `minimarket verify`", value=result["mismatches"])
            yield GaugeMetricFamily("minimarket_ledger_last_verify_timestamp_seconds",
                                    "When `minimarket verify` last ran", value=result["at"])
        # Never backed up reads as 0, so BackupStale fires until the first backup exists.
        yield GaugeMetricFamily("minimarket_backup_last_success_timestamp_seconds",
                                "When the last backup finished successfully", value=float(backup or 0))

    def _certificates(self):  # noqa: ANN202
        from cryptography import x509

        expiry = GaugeMetricFamily("minimarket_tls_certificate_expiry_timestamp_seconds",
                                   "Not-after time of each configured TLS certificate", labels=["certificate"])
        for path in self.cert_files:
            try:
                cert = x509.load_pem_x509_certificate(path.read_bytes())
            except (OSError, ValueError):
                continue
            expiry.add_metric([path.name], cert.not_valid_after_utc.timestamp())
        yield expiry

    def _memory(self):  # noqa: ANN202
        yield GaugeMetricFamily("minimarket_memory_limit_bytes",
                                "Memory limit: the cgroup's when there is one, else the machine's",
                                value=memory_limit_bytes())
        yield GaugeMetricFamily("minimarket_memory_usage_bytes",
                                "Memory in use: the cgroup's when limited, else this process's resident set",
                                value=memory_usage_bytes())

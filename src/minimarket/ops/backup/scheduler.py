"""Nightly backups run by the app itself, by exactly one replica.

Every replica (and every Uvicorn worker) runs a `BackupScheduler`; at the scheduled store-local
hour each tries to take a lock and only the holder backs up:

* PostgreSQL: `pg_try_advisory_lock(BACKUP_LOCK_KEY)` on a dedicated connection held for the
  whole run (a crashed holder's connection closes and the lock goes with it);
* SQLite: `flock` on `<database file>.respaldo.lock` (one machine shares the file).

Inside the lock the holder re-reads `backup.ultimo_exito`: a replica whose timer fires a little
later (clock skew) finds the slot already done and skips, so each slot yields one archive.

Configuration (environment, or Settings fields of the same name when they exist):
BACKUP_ENABLED (default: true in production, false in development), BACKUP_SCHEDULE_HOUR (0-23,
store-local, default 3), BACKUP_DIR (default ./backups), BACKUP_KEEP (default 14),
BACKUP_INCLUDE_CONFIG (default true).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import text

from minimarket.ar.dates import STORE_TZ
from minimarket.config import ConfigError
from minimarket.db import Database
from minimarket.ops.backup.archive import BackupResult, create_backup, last_backup_success
from minimarket.ops.backup.manifest import BackupError, is_sqlite_url, normalise_url, plain_engine, sqlite_file
from minimarket.stock.verify import run_verification

log = structlog.get_logger("minimarket.backup")

BACKUP_LOCK_KEY = int.from_bytes(b"mmbackup", "big")  # one constant for every replica of every service
SKEW_TOLERANCE = timedelta(minutes=15)  # a backup this close before the slot counts for the slot
RETRY_DELAY = timedelta(minutes=30)
MAX_ATTEMPTS = 3  # per slot; after that BackupStale (26 h) tells a person
_WAKE_EVERY = 600.0  # seconds; long sleeps are cut so a suspended host or clock change is noticed
_TRUE = {"1", "true", "yes", "si", "sí", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class ScheduleConfig:
    enabled: bool
    hour: int = 3
    dest: Path = Path("backups")
    keep: int = 14
    include_config: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, production: bool = False,
                 settings: Any = None) -> ScheduleConfig:
        """Read BACKUP_*; Settings attributes (backup_enabled, …) win when the Settings class has them."""
        env = os.environ if environ is None else environ

        def raw(name: str) -> str | None:
            value = getattr(settings, name.lower(), None) if settings is not None else None
            if value is not None:
                return str(value)
            return env.get(name)

        enabled_raw = raw("BACKUP_ENABLED")
        if enabled_raw is None:
            enabled = production
        elif enabled_raw.strip().lower() in _TRUE:
            enabled = True
        elif enabled_raw.strip().lower() in _FALSE:
            enabled = False
        else:
            raise ConfigError(f"BACKUP_ENABLED: '{enabled_raw}' no es un valor válido (usá true o false)")
        hour = _int(raw("BACKUP_SCHEDULE_HOUR"), 3, "BACKUP_SCHEDULE_HOUR", "una hora entre 0 y 23", 0, 23)
        keep = _int(raw("BACKUP_KEEP"), 14, "BACKUP_KEEP", "un número de respaldos a conservar (1 o más)", 1, 10_000)
        include_raw = (raw("BACKUP_INCLUDE_CONFIG") or "true").strip().lower()
        if include_raw not in _TRUE | _FALSE:
            raise ConfigError(f"BACKUP_INCLUDE_CONFIG: '{include_raw}' no es un valor válido (usá true o false)")
        return cls(enabled=enabled, hour=hour, dest=Path(raw("BACKUP_DIR") or "backups"), keep=keep,
                   include_config=include_raw in _TRUE)


def _int(value: str | None, default: int, name: str, what: str, low: int, high: int) -> int:
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}: '{value}' no es {what}") from None
    if not low <= number <= high:
        raise ConfigError(f"{name}: '{value}' no es {what}")
    return number


def next_slot(now: datetime, hour: int) -> datetime:
    """The next time it is `hour`:00 in the store's time zone (today if still ahead, else tomorrow)."""
    local = now.astimezone(STORE_TZ)
    slot = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if slot <= local:
        slot += timedelta(days=1)
    return slot


@dataclass(frozen=True)
class RunOutcome:
    status: str  # "hecho" | "ocupado" (another replica holds the lock) | "ya_hecho" | "error"
    result: BackupResult | None = None
    error: str | None = None


class BackupScheduler:
    def __init__(self, database_url: str, config: ScheduleConfig, *, config_root: Path | None = None,
                 on_commit: Callable[[dict], None] | None = None):
        self.url = normalise_url(database_url)
        self.config = config
        self.config_root = config_root
        self.on_commit = on_commit  # the app's cache invalidation: the forecast it writes is shown by kept pages

    @contextlib.contextmanager
    def lock(self) -> Iterator[bool]:
        """Yield True while this process holds the cluster-wide backup lock, False if someone else does."""
        if is_sqlite_url(self.url):
            lock_path = Path(f"{sqlite_file(self.url)}.respaldo.lock")
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # flock: per open file, so threads conflict too
                except BlockingIOError:
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
            return
        engine = plain_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:  # dedicated: the session-level lock lives as long as this connection
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": BACKUP_LOCK_KEY}).scalar())
                try:
                    yield got
                finally:
                    if got:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": BACKUP_LOCK_KEY})
        finally:
            engine.dispose()

    def run_once(self, slot: datetime | None = None) -> RunOutcome:
        """One attempt for `slot` (default: now): lock, skip if already done, back up, prune."""
        slot = slot or datetime.now(UTC)
        try:
            with self.lock() as held:
                if not held:
                    log.info("backup_skipped_locked")
                    return RunOutcome("ocupado")
                last = last_backup_success(self.url)
                if last is not None and last >= (slot - SKEW_TOLERANCE).timestamp():
                    log.info("backup_skipped_done", last_success=last)
                    return RunOutcome("ya_hecho")
                result = create_backup(self.url, self.config.dest, keep=self.config.keep,
                                       include_config=self.config.include_config, config_root=self.config_root)
        except (BackupError, ConfigError) as exc:
            log.error("backup_failed", error=str(exc))
            return RunOutcome("error", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - the scheduler must outlive one bad night
            log.exception("backup_failed", error=str(exc).splitlines()[0][:300] if str(exc) else repr(exc))
            return RunOutcome("error", error=str(exc))
        log.info("backup_done", path=str(result.path), bytes=result.size, seconds=round(result.seconds, 2),
                 deleted=len(result.deleted), warnings=result.warnings)
        self._verify_ledger()
        self._recompute_forecast()
        return RunOutcome("hecho", result=result)

    def _verify_ledger(self) -> None:
        """The nightly run also proves balances == ledger, feeding minimarket_ledger_mismatches."""
        database = Database(self.url)
        try:
            report = run_verification(database)
            log.info("ledger_verified", mismatches=len(report.mismatches), aggregates=len(report.aggregates),
                     balances=report.balances_checked)
        except Exception as exc:  # noqa: BLE001 - the backup already succeeded; the alert will say verify is stale
            log.warning("ledger_verify_failed", error=str(exc).splitlines()[0][:300] if str(exc) else repr(exc))
        finally:
            database.dispose()

    def _recompute_forecast(self) -> None:
        """The nightly run also recomputes the demand forecast (purchasing), on this one replica."""
        from minimarket.purchasing.service import run_forecast  # late: the backup must not need numpy to start

        database = Database(self.url, on_commit=self.on_commit)  # bumps "catalog": Pronóstico, what to order
        try:
            with database.write() as session:
                summary = run_forecast(session)
            log.info("forecast_recomputed", products=summary.products, seconds=summary.seconds)
        except Exception as exc:  # noqa: BLE001 - the backup already succeeded; yesterday's forecast stays
            log.warning("forecast_failed", error=str(exc).splitlines()[0][:300] if str(exc) else repr(exc))
        finally:
            database.dispose()

    async def run_forever(self) -> None:
        """Sleep until each slot, then run (retrying a failed slot); ends only when cancelled."""
        while True:
            slot = next_slot(datetime.now(UTC), self.config.hour)
            log.info("backup_scheduled", at=slot.isoformat())
            await _sleep_until(slot)
            for attempt in range(1, MAX_ATTEMPTS + 1):
                outcome = await asyncio.to_thread(self.run_once, slot)
                if outcome.status != "error" or attempt == MAX_ATTEMPTS:
                    break
                await _sleep_until(datetime.now(UTC) + RETRY_DELAY)


async def _sleep_until(when: datetime) -> None:
    for _ in range(10_000):  # bounded: 10 000 wake-ups of ≤ 10 min cover more than a month
        remaining = (when - datetime.now(UTC)).total_seconds()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, _WAKE_EVERY))


def start_backup_scheduler(app: Any) -> asyncio.Task | None:
    """Start the nightly backup task for this app (call from the lifespan); None when disabled."""
    settings = app.state.settings
    config = ScheduleConfig.from_env(production=settings.is_production, settings=settings)
    if not config.enabled:
        return None
    if is_sqlite_url(settings.database_url) and settings.sqlite_path() is None:
        log.warning("backup_disabled_memory_database")
        return None
    database = getattr(app.state, "db", None)  # its on_commit: the forecast's writes bump the cache versions
    scheduler = BackupScheduler(settings.database_url, config,
                                on_commit=database.on_commit if database is not None else None)
    app.state.backup_scheduler = scheduler
    return asyncio.get_running_loop().create_task(scheduler.run_forever(), name="minimarket-backup-scheduler")

"""Backups that restore: `minimarket backup` / `restore` on real SQLite and PostgreSQL databases.

Every test works on a demo store (40 products, 10 days). The commands run through Typer's
CliRunner with DATABASE_URL in the environment; the archive, the restored database and the
original are then inspected independently of the code under test where it matters (row ids,
verify_ledger, file modes).
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from minimarket.accounts.audit import Context
from minimarket.catalog.models import Product
from minimarket.config import ConfigError, Settings, get_settings
from minimarket.db import Database
from minimarket.migrations.runner import head_revision
from minimarket.cli import backup as backup_cli
from minimarket.ops.backup.archive import create_backup, database_label, list_archives
from minimarket.ops.backup.manifest import canonical_value, describe_url
from minimarket.demo.generator import generate_demo
from minimarket.ops.backup.restore import open_backup, restore_config
from minimarket.ops.backup.scheduler import BACKUP_LOCK_KEY, BackupScheduler, ScheduleConfig, next_slot, start_backup_scheduler
from minimarket.ops.store_metrics import StoreCollector
from minimarket.platform.cache import make_cache
from minimarket.stock.models import Movement
from minimarket.stock.schemas import BatchIn, BatchLine, SaleIn, SaleLine
from minimarket.stock.service import record_sale, register_movements
from minimarket.stock.verify import verify_ledger
from minimarket.store_settings import LAST_BACKUP, read_value_from
from tests.helpers import drop_pg_database, make_settings, pg_url_for

pytestmark = pytest.mark.timeout(120)

ARCHIVE_NAME = re.compile(r"^minimarket_(?P<db>.+)_\d{8}_\d{6}(-\d+)?\.tar\.gz$")
CTX = Context(actor="test-respaldo")
STORE = Settings(_env_file=None, default_location="DEP", allow_negative_stock=False)


# --------------------------------------------------------------------------- helpers


def run_cli(url: str, *args: str, input: str | None = None):  # noqa: A002, ANN201
    """`minimarket <args>` (the backup commands) with DATABASE_URL=url; settings cache cleared around it."""
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(backup_cli.app, list(args), input=input,
                                  env={"DATABASE_URL": url, "MINIMARKET_ENV": "development", "COLUMNS": "200",
                                       "NO_COLOR": "1", "TERM": "dumb"})
    finally:
        get_settings.cache_clear()


def out(result) -> str:  # noqa: ANN001
    return result.output + (f"\n{result.exception!r}" if result.exception and not isinstance(result.exception,
                                                                                           SystemExit) else "")


def tables_of(url: str) -> dict:
    return describe_url(url)["tables"]


def movement_ids(url: str) -> set[int]:
    db = Database(url)
    try:
        with db.read() as session:
            return set(session.scalars(select(Movement.id)))
    finally:
        db.dispose()


def ledger_ok(url: str) -> bool:
    db = Database(url)
    try:
        with db.read() as session:
            report = verify_ledger(session)
    finally:
        db.dispose()
    assert report.balances_checked > 0
    return report.ok


def skus(db: Database, n: int = 5) -> list[str]:
    with db.read() as session:
        return list(session.scalars(select(Product.sku).order_by(Product.id).limit(n)))


def post_entry(db: Database, sku: str) -> int:
    """One `entrada` through the service layer (the same code the API runs); returns its movement id."""
    with db.write() as session:
        batch = register_movements(session, CTX, settings=STORE,
                                   batch=BatchIn(lines=[BatchLine(sku=sku, type="entrada", quantity=Decimal("1"))]))
        return batch.movements[0].id


def post_sale(db: Database, sku: str) -> int:
    with db.write() as session:
        sale = record_sale(session, CTX, sale=SaleIn(ticket_id=f"t-{uuid.uuid4().hex[:12]}", location="DEP",
                                                     lines=[SaleLine(sku=sku, quantity=Decimal("1"))]),
                           settings=STORE)
        return sale.movements[0].id


def drop_database(url: str) -> None:
    """Lose the database entirely (the disaster the backup is for)."""
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
    else:
        drop_pg_database(url)


def repack(archive: Path, dest: Path, *, manifest=None, database=None, drop=()) -> Path:  # noqa: ANN001
    """Copy an archive changing members: manifest(dict)->dict, database(bytes)->bytes, drop names."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(dest, "w:gz") as dst:
        for member in src:
            if member.name in drop:
                continue
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name == "manifest.json" and manifest is not None:
                data = json.dumps(manifest(json.loads(data))).encode()
            elif member.name.startswith("database.") and database is not None:
                data = database(data)
            info = tarfile.TarInfo(member.name)
            info.size, info.mode = len(data), member.mode
            dst.addfile(info, io.BytesIO(data))
    return dest


def pg_staging_left(url: str) -> list[str]:
    name = make_url(url).database
    engine = create_engine(pg_url_for("postgres"))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                                     {"p": f"{name[:40]}_restaurando_%"}).scalars())
    finally:
        engine.dispose()


@pytest.fixture
def store(database_url: str) -> Iterator[str]:
    """A migrated database of the test's backend with a small demo store in it."""
    db = Database(database_url)
    try:
        generate_demo(db, products=40, days=10, seed=7)
    finally:
        db.dispose()
    yield database_url


@pytest.fixture
def config_root(tmp_path: Path) -> Path:
    """A project directory with the runbook's configuration files (a private key among them)."""
    root = tmp_path / "proyecto"
    (root / "observability/prometheus/tls").mkdir(parents=True)
    (root / "observability/alertmanager").mkdir(parents=True)
    (root / ".env.production").write_text("DATABASE_ENCRYPTION_KEY=" + "ab" * 32 + "\n")
    (root / "observability/prometheus/prometheus.yml").write_text("global: {}\n")
    (root / "observability/alertmanager/alertmanager.yml").write_text("route: {}\n")
    key = root / "observability/prometheus/tls/prometheus.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\nfalsa\n-----END PRIVATE KEY-----\n")
    key.chmod(0o600)
    (root / "observability/prometheus/tls/ca.crt").write_text("cert\n")
    return root


def make_backup(url: str, dest: Path, *extra: str) -> Path:
    result = run_cli(url, "backup", "--dest", str(dest), *extra)
    assert result.exit_code == 0, out(result)
    archives = sorted(p for p in dest.iterdir() if p.name.endswith(".tar.gz"))
    assert archives, out(result)
    return archives[-1]


def read_manifest(archive: Path) -> dict:
    with tarfile.open(archive, "r:gz") as tar:
        return json.loads(tar.extractfile("manifest.json").read())


# --------------------------------------------------------------------------- backup


def test_backup_archive_holds_database_config_and_manifest(store: str, tmp_path: Path, config_root: Path) -> None:
    dest = tmp_path / "respaldos"
    before = time.time()
    archive = make_backup(store, dest, "--config-root", str(config_root))

    assert ARCHIVE_NAME.match(archive.name), archive.name
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # secrets inside: owner only
    backend = "sqlite" if store.startswith("sqlite") else "postgresql"
    with tarfile.open(archive, "r:gz") as tar:
        names = set(tar.getnames())
        key_member = tar.getmember("config/observability/prometheus/tls/prometheus.key")
        key_text = tar.extractfile(key_member).read().decode()
    assert {"manifest.json", "database.sqlite3" if backend == "sqlite" else "database.dump",
            "config/.env.production", "config/observability/prometheus/prometheus.yml",
            "config/observability/alertmanager/alertmanager.yml", "config/observability/prometheus/tls/ca.crt",
            "config/observability/prometheus/tls/prometheus.key"} <= names, names
    assert "PRIVATE KEY" in key_text and stat.S_IMODE(key_member.mode) == 0o600

    manifest = read_manifest(archive)
    assert manifest["backend"] == backend
    assert manifest["schema_revision"] == head_revision()
    assert manifest["app_version"] and manifest["created_at"].endswith("Z")
    assert manifest["ledger"]["ok"] is True and manifest["ledger"]["movements"] > 100
    # The manifest describes the data: compare with an independent count of the live database.
    live = tables_of(store)
    counted = {name: t["rows"] for name, t in manifest["tables"].items()}
    assert counted["productos"] == 40
    assert counted["movimientos_stock"] == len(movement_ids(store))
    assert {k: v for k, v in counted.items() if k != "ajustes"} == \
        {k: v["rows"] for k, v in live.items() if k != "ajustes"}  # ajustes gained backup.ultimo_exito since

    # The success time is written through store_settings and /metrics reports it.
    db = Database(store)
    try:
        recorded = float(read_value_from(db, LAST_BACKUP))
        collector = StoreCollector(service="all", db=db, cache=make_cache(None), cert_files=[])
        families = {f.name: f for f in collector.collect()}
    finally:
        db.dispose()
    assert before <= recorded <= time.time()
    assert families["minimarket_backup_last_success_timestamp_seconds"].samples[0].value == pytest.approx(recorded)

    without = make_backup(store, tmp_path / "sin-config", "--no-config", "--config-root", str(config_root))
    with tarfile.open(without, "r:gz") as tar:
        assert not [n for n in tar.getnames() if n.startswith("config/")]


def test_backup_failure_exits_nonzero_in_spanish(tmp_path: Path) -> None:
    missing = tmp_path / "no-existe.db"
    result = run_cli(f"sqlite:///{missing}", "backup", "--dest", str(tmp_path / "r"))
    assert result.exit_code == 1, out(result)
    assert "El respaldo falló" in result.output and "No existe la base SQLite" in result.output
    assert not missing.exists()


def test_canonical_form_is_the_same_for_what_each_backend_returns() -> None:
    from zoneinfo import ZoneInfo

    from sqlalchemy import JSON, Boolean, DateTime, LargeBinary, Numeric

    money, qty = Numeric(14, 2), Numeric(12, 3)
    # SQLite hands back floats (or ints) where PostgreSQL hands back Decimals of the column's scale.
    assert {canonical_value(v, money) for v in (Decimal("1.5"), Decimal("1.50"), 1.5, Decimal("1.5000"))} == {"1.50"}
    assert {canonical_value(v, qty) for v in (5, 5.0, Decimal("5"), Decimal("5.000"))} == {"5.000"}
    assert canonical_value(-0.0, qty) == canonical_value(Decimal("0.000"), qty) == "0.000"
    # SQLite returns naive UTC; PostgreSQL returns the instant in the session's time zone.
    utc = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    stamps = {canonical_value(v, DateTime(timezone=True))
              for v in (utc, utc.replace(tzinfo=None), utc.astimezone(ZoneInfo("America/Argentina/Buenos_Aires")))}
    assert stamps == {"2026-03-01T12:00:00.123456Z"}
    assert canonical_value(b"\x01\xff", LargeBinary()) == canonical_value(memoryview(b"\x01\xff"), LargeBinary()) == "01ff"
    assert canonical_value(1, Boolean()) is True and canonical_value(0, Boolean()) is False
    assert canonical_value({"b": 1, "a": [1, 2]}, JSON()) == {"b": 1, "a": [1, 2]}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_retention_keeps_exactly_the_newest_n(store: str, tmp_path: Path) -> None:
    dest = tmp_path / "respaldos"
    dest.mkdir()
    foreign = dest / "minimarket_otra_20200101_000000.tar.gz"
    foreign.write_bytes(b"de otra base")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    made = [create_backup(store, dest, now=t0 + timedelta(days=i), include_config=False, record_success=False).path
            for i in range(4)]
    # Same second twice: the second gets a -1 suffix, is newer, and retention must see it so.
    made.append(create_backup(store, dest, now=t0 + timedelta(days=3), include_config=False,
                              record_success=False).path)
    assert made[-1].name.endswith("-1.tar.gz")
    result = run_cli(store, "backup", "--dest", str(dest), "--keep", "3", "--no-config")
    assert result.exit_code == 0, out(result)
    kept = list_archives(dest, database_label(store))
    assert len(kept) == 3
    assert kept[:2] == [made[3], made[4]] and kept[2] not in made  # the two newest old ones + this run's
    assert foreign.exists()  # another database's archives are not this retention's business
    assert "se borraron 3 respaldo(s)" in result.output


# --------------------------------------------------------------------------- restore round trips


def test_backup_while_writing_then_drop_and_restore(store: str, tmp_path: Path) -> None:
    """Writes run before, during and after the snapshot; the restore brings back exactly the snapshot."""
    db = Database(store)
    products = skus(db)
    stop = threading.Event()
    errors: list[BaseException] = []
    written: list[int] = []

    def writer() -> None:
        for i in range(3000):  # bounded; normally stopped long before
            if stop.is_set():
                return
            try:
                sku = products[(i // 2) % len(products)]  # each sale follows an entry of the same product
                written.append(post_entry(db, sku) if i % 2 == 0 else post_sale(db, sku))
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
                return
            time.sleep(0.002)

    after_snapshot_ids: list[int] = []

    def during_backup() -> None:
        # Committed after the snapshot: the dump and the manifest must both leave these out.
        after_snapshot_ids.extend(post_entry(db, products[0]) for _ in range(3))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while len(written) < 10 and time.monotonic() < deadline and not errors:
        time.sleep(0.01)
    written_before = len(written)
    result = create_backup(store, tmp_path / "respaldos", after_snapshot=during_backup, include_config=False)
    time.sleep(0.05)
    stop.set()
    thread.join(timeout=10)
    assert not errors, errors
    assert written_before >= 10 and len(written) > written_before, "the writer did not overlap the backup"
    live_ids = movement_ids(store)
    db.dispose()
    manifest_rows = result.manifest["tables"]["movimientos_stock"]["rows"]
    assert manifest_rows < len(live_ids)

    drop_database(store)
    restored = run_cli(store, "restore", str(result.path), "--yes")
    assert restored.exit_code == 0, out(restored)
    assert "Restauración verificada" in restored.output

    ids = movement_ids(store)
    assert len(ids) == manifest_rows  # every row the manifest counted is back, and nothing else
    assert ids == {i for i in live_ids if i <= max(ids)}  # a snapshot: no committed write missing below it
    assert not ids & set(after_snapshot_ids)
    assert tables_of(store) == result.manifest["tables"]
    assert ledger_ok(store)  # ledger sums equal balances in the restored snapshot


def test_restore_asks_and_replaces_the_configured_database(store: str, tmp_path: Path) -> None:
    archive = make_backup(store, tmp_path / "r", "--no-config")
    manifest = read_manifest(archive)
    db = Database(store)
    try:
        for sku in skus(db, 3):
            post_entry(db, sku)  # changes made after the backup: the restore rolls them back
    finally:
        db.dispose()
    changed = tables_of(store)
    assert changed["movimientos_stock"] != manifest["tables"]["movimientos_stock"]

    declined = run_cli(store, "restore", str(archive), input="n\n")
    assert declined.exit_code == 1, out(declined)
    assert "¿Continuar? (s/n)" in declined.output and "Cancelado" in declined.output
    assert tables_of(store) == changed

    accepted = run_cli(store, "restore", str(archive), input="s\n")
    assert accepted.exit_code == 0, out(accepted)
    assert "REEMPLAZAR" in accepted.output
    assert tables_of(store) == manifest["tables"]
    assert ledger_ok(store)
    if store.startswith("postgresql"):
        assert pg_staging_left(store) == []


def test_restore_into_a_new_database_leaves_the_original_untouched(store: str, tmp_path: Path) -> None:
    archive = make_backup(store, tmp_path / "r", "--no-config")
    manifest = read_manifest(archive)
    db = Database(store)
    try:
        post_entry(db, skus(db, 1)[0])
    finally:
        db.dispose()
    original = tables_of(store)
    if store.startswith("sqlite"):
        into = f"sqlite:///{tmp_path / 'prueba.db'}"
        into_url = into
    else:
        into = f"mm_t_prueba_{uuid.uuid4().hex[:8]}"
        into_url = pg_url_for(into)
    try:
        result = run_cli(store, "restore", str(archive), "--yes", "--into", into)
        assert result.exit_code == 0, out(result)
        assert "no se tocó" in result.output
        assert tables_of(into_url) == manifest["tables"]
        assert ledger_ok(into_url)
        assert tables_of(store) == original
        again = run_cli(store, "restore", str(archive), "--yes", "--into", into)
        assert again.exit_code == 1 and "ya existe" in again.output, out(again)
    finally:
        if not into_url.startswith("sqlite"):
            drop_pg_database(into_url)


def test_restore_config_files_never_overwrites_silently(store: str, tmp_path: Path, config_root: Path) -> None:
    archive = make_backup(store, tmp_path / "r", "--config-root", str(config_root))
    target = tmp_path / "config-restaurada"
    (target / "observability/prometheus").mkdir(parents=True)
    (target / "observability/prometheus/prometheus.yml").write_text("global: {scrape_interval: 5s}\n")
    (target / "observability/alertmanager").mkdir(parents=True)
    (target / "observability/alertmanager/alertmanager.yml").write_text("route: {}\n")  # identical

    result = run_cli(store, "restore", str(archive), "--yes", "--with-config", str(target))
    assert result.exit_code == 0, out(result)
    assert (target / "observability/prometheus/prometheus.yml").read_text() == "global: {scrape_interval: 5s}\n"
    assert (target / "observability/prometheus/prometheus.yml.restaurado").read_text() == "global: {}\n"
    assert (target / ".env.production").read_text() == (config_root / ".env.production").read_text()
    key = target / "observability/prometheus/tls/prometheus.key"
    assert "PRIVATE KEY" in key.read_text() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not (target / "observability/alertmanager/alertmanager.yml.restaurado").exists()

    # Once more: the file and its .restaurado both exist, so nothing is written over either.
    (target / "observability/prometheus/prometheus.yml.restaurado").write_text("editado a mano\n")
    opened = open_backup(archive, tmp_path / "extraido")
    statuses = dict(restore_config(opened, target))
    assert statuses["observability/prometheus/prometheus.yml"].startswith("NO se escribió")
    assert (target / "observability/prometheus/prometheus.yml.restaurado").read_text() == "editado a mano\n"
    assert statuses[".env.production"].startswith("igual")


# --------------------------------------------------------------------------- refusals


def test_damaged_archives_are_refused_and_the_database_is_kept(store: str, tmp_path: Path) -> None:
    archive = make_backup(store, tmp_path / "r", "--no-config")
    manifest = read_manifest(archive)
    db = Database(store)
    try:
        post_entry(db, skus(db, 1)[0])  # the live database differs from the backup from here on
        with db.read() as session:
            product_name = session.scalars(select(Product.name).order_by(Product.id)).first()
    finally:
        db.dispose()
    original = tables_of(store)
    bad = tmp_path / "malos"
    bad.mkdir()

    truncated = bad / "truncado.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    no_manifest = repack(archive, bad / "sin-manifest.tar.gz", drop={"manifest.json"})

    def flip_name(data: bytes) -> bytes:
        # Change one letter of a product's name wherever it is stored (the dump is uncompressed COPY text).
        name = product_name.encode()
        assert name in data
        return data.replace(name, name[:-1] + (b"X" if name[-1:] != b"X" else b"Y"))

    flipped = repack(archive, bad / "dump-alterado.tar.gz", database=flip_name)

    def consistent(m: dict) -> dict:
        # Same alteration, with the file checksum made to match: only the per-table checksum can notice.
        with tarfile.open(flipped, "r:gz") as tar:
            data = tar.extractfile(m["database_file"]["name"]).read()
        import hashlib

        m["database_file"]["sha256"] = hashlib.sha256(data).hexdigest()
        return m

    rows_altered = repack(archive, bad / "filas-alteradas.tar.gz", database=flip_name, manifest=consistent)

    cases = {
        truncated: "dañado o incompleto",
        no_manifest: "no tiene manifest.json",
        flipped: "SHA-256 no coincide",
        rows_altered: "no coincide con su manifiesto",
    }
    for path, phrase in cases.items():
        result = run_cli(store, "restore", str(path), "--yes")
        assert result.exit_code == 1, f"{path.name}: {out(result)}"
        assert phrase in result.output, f"{path.name}: {result.output}"
        assert tables_of(store) == original, path.name
    rows_result = run_cli(store, "restore", str(rows_altered), "--yes")
    assert re.search(r"productos .*distinto", rows_result.output), rows_result.output
    if store.startswith("postgresql"):
        assert pg_staging_left(store) == []
    assert manifest["tables"] != original


def test_newer_schema_revision_is_refused(store: str, tmp_path: Path) -> None:
    archive = make_backup(store, tmp_path / "r", "--no-config")
    newer = repack(archive, tmp_path / "nuevo.tar.gz", manifest=lambda m: {**m, "schema_revision": "9999_futuro"})
    before = tables_of(store)
    result = run_cli(store, "restore", str(newer), "--yes")
    assert result.exit_code == 1, out(result)
    assert "versión más nueva" in result.output and "9999_futuro" in result.output
    assert tables_of(store) == before


@pytest.mark.parametrize("backend", ["postgresql"])
def test_restore_refuses_while_sessions_hold_the_postgres_database(store: str, tmp_path: Path) -> None:
    archive = make_backup(store, tmp_path / "r", "--no-config")
    db = Database(store)  # the app's engine: application_name=minimarket
    try:
        post_entry(db, skus(db, 1)[0])
        held = db.engine.connect()
        held.execute(text("SELECT 1"))
        refused = run_cli(store, "restore", str(archive), "--yes")
        assert refused.exit_code == 1, out(refused)
        assert "minimarket" in refused.output and "docker-compose" in refused.output, refused.output
        assert "--force" in refused.output
        assert "pg_restore" not in refused.output  # refused up front, not after a long restore
        assert tables_of(store) != read_manifest(archive)["tables"]

        forced = run_cli(store, "restore", str(archive), "--yes", "--force")
        assert forced.exit_code == 0, out(forced)
        with pytest.raises(OperationalError):
            held.execute(text("SELECT 1"))  # --force cut the session that held the database
        held.close()
    finally:
        db.dispose()
    assert tables_of(store) == read_manifest(archive)["tables"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_restore_refuses_a_sqlite_file_a_server_has_open(store: str, tmp_path: Path) -> None:
    archive = make_backup(store, tmp_path / "r", "--no-config")
    db = Database(store)  # like a running server: its pool keeps the connection open
    try:
        post_entry(db, skus(db, 1)[0])
        refused = run_cli(store, "restore", str(archive), "--yes")
        assert refused.exit_code == 1, out(refused)
        assert "en uso" in refused.output and "--force" in refused.output
        assert "Restauración" not in refused.output  # refused up front, before copying anything
    finally:
        db.dispose()
    assert tables_of(store) != read_manifest(archive)["tables"]
    freed = run_cli(store, "restore", str(archive), "--yes")
    assert freed.exit_code == 0, out(freed)
    assert tables_of(store) == read_manifest(archive)["tables"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_restore_refuses_a_backup_of_the_other_backend(store: str, tmp_path: Path) -> None:
    archive = make_backup(store, tmp_path / "r", "--no-config")
    result = run_cli("postgresql://postgres@127.0.0.1:1/nada", "restore", str(archive), "--yes")
    assert result.exit_code == 1, out(result)
    assert "es de sqlite" in result.output and "migrate-to" in result.output


# --------------------------------------------------------------------------- scheduler


def test_two_schedulers_racing_make_exactly_one_backup(store: str, tmp_path: Path) -> None:
    dest = tmp_path / "programados"
    config = ScheduleConfig(enabled=True, hour=3, dest=dest, keep=5, include_config=False)
    schedulers = [BackupScheduler(store, config), BackupScheduler(store, config)]
    slot = datetime.now(UTC)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run(scheduler: BackupScheduler) -> None:
        barrier.wait(timeout=10)
        outcomes.append(scheduler.run_once(slot).status)

    threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) in (["hecho", "ocupado"], ["hecho", "ya_hecho"]), outcomes
    assert len([p for p in dest.iterdir() if p.name.endswith(".tar.gz")]) == 1
    # A replica whose clock fires later in the same slot finds it done.
    assert schedulers[1].run_once(slot + timedelta(minutes=2)).status == "ya_hecho"
    assert len([p for p in dest.iterdir() if p.name.endswith(".tar.gz")]) == 1


def test_scheduler_skips_while_another_replica_holds_the_lock(store: str, tmp_path: Path) -> None:
    import fcntl

    dest = tmp_path / "programados"
    scheduler = BackupScheduler(store, ScheduleConfig(enabled=True, dest=dest, keep=5, include_config=False))
    if store.startswith("sqlite"):
        lock_path = Path(store.split("///", 1)[1] + ".respaldo.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            assert scheduler.run_once().status == "ocupado"
        finally:
            os.close(fd)
    else:
        engine = create_engine(store)
        try:
            with engine.connect() as other_replica:
                assert other_replica.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": BACKUP_LOCK_KEY}).scalar()
                assert scheduler.run_once().status == "ocupado"
                other_replica.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": BACKUP_LOCK_KEY})
                other_replica.commit()
        finally:
            engine.dispose()
    assert not dest.exists() or not list(dest.glob("*.tar.gz"))
    assert scheduler.run_once().status == "hecho"
    assert len(list(dest.glob("*.tar.gz"))) == 1


@pytest.mark.parametrize("backend", ["sqlite"])
def test_schedule_configuration_and_start(database_url: str) -> None:
    import asyncio

    assert ScheduleConfig.from_env({}, production=False).enabled is False
    assert ScheduleConfig.from_env({}, production=True).enabled is True
    parsed = ScheduleConfig.from_env({"BACKUP_ENABLED": "true", "BACKUP_SCHEDULE_HOUR": "23", "BACKUP_DIR": "/x",
                                      "BACKUP_KEEP": "7"})
    assert (parsed.enabled, parsed.hour, parsed.dest, parsed.keep) == (True, 23, Path("/x"), 7)
    for env, name in (({"BACKUP_SCHEDULE_HOUR": "24"}, "BACKUP_SCHEDULE_HOUR"), ({"BACKUP_KEEP": "0"}, "BACKUP_KEEP"),
                      ({"BACKUP_ENABLED": "quizás"}, "BACKUP_ENABLED")):
        with pytest.raises(ConfigError, match=name):
            ScheduleConfig.from_env(env)
    # 02:30 in Buenos Aires (UTC-3) → today 03:00 local; 03:00 sharp → tomorrow.
    assert next_slot(datetime(2026, 5, 1, 5, 30, tzinfo=UTC), 3) == datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
    assert next_slot(datetime(2026, 5, 1, 6, 0, tzinfo=UTC), 3) == datetime(2026, 5, 2, 6, 0, tzinfo=UTC)

    app = SimpleNamespace(state=SimpleNamespace(settings=make_settings(database_url)))

    async def start(enabled: str) -> object:
        os.environ["BACKUP_ENABLED"] = enabled
        try:
            task = start_backup_scheduler(app)
        finally:
            del os.environ["BACKUP_ENABLED"]
        if task is not None:
            await asyncio.sleep(0)
            assert not task.done()
            task.cancel()
        return task

    assert asyncio.run(start("false")) is None
    assert asyncio.run(start("true")) is not None
    assert isinstance(app.state.backup_scheduler, BackupScheduler)

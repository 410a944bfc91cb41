"""A real `minimarket serve` takes sales over HTTP while `backup` runs as its own process; after the
server is stopped, `restore` brings back exactly one consistent moment of the store.

The writer posts an `entrada` then a sale of the same product, one request at a time, and keeps
the movement id of every answered request. The backup must land between two of them: every write
answered before it started is restored, every write answered after it finished is not, and the
restored ledger is a gap-free prefix of the live one with balances equal to their ledger sums.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from minimarket.catalog.models import Product
from minimarket.db import Database
from minimarket.migrations.runner import upgrade
from minimarket.demo.generator import generate_demo
from minimarket.stock.models import Movement
from minimarket.stock.verify import verify_ledger
from tests.e2e.servers import CLI_TIMEOUT, StartServer, measure

pytestmark = pytest.mark.timeout(180)

MAX_REQUESTS = 4000  # the writer's bound; it is normally stopped after a few hundred


def backup_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """The backup commands in their own process (cli.py wiring is the lead's: use the module directly)."""
    try:
        return subprocess.run([sys.executable, "-m", "minimarket.cli.backup", *args], env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`{' '.join(args)}` did not finish within {CLI_TIMEOUT} s:\n{exc.stdout}\n{exc.stderr}")


class Writer(threading.Thread):
    """Posts entry, sale, entry, sale… over HTTP; records (monotonic time answered, movement ids)."""

    def __init__(self, base_url: str, key: str, skus: list[str]):
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=30, trust_env=False)
        self.skus = skus
        self.stop = threading.Event()
        self.acked: list[tuple[float, list[int]]] = []
        self.error: str | None = None

    def run(self) -> None:
        try:
            for i in range(MAX_REQUESTS):
                if self.stop.is_set():
                    return
                sku = self.skus[(i // 2) % len(self.skus)]  # a sale always follows an entry of its product
                if i % 2 == 0:
                    r = self.client.post(f"/api/inventory/{sku}/movements",
                                         json={"type": "entrada", "quantity": "1", "location": "DEP"})
                    ids = [r.json()["id"]] if r.status_code == 201 else []
                else:
                    r = self.client.post("/api/sales", json={"ticket_id": f"e2e-{uuid.uuid4().hex[:12]}",
                                                             "location": "DEP", "lines": [{"sku": sku, "quantity": 1}]})
                    ids = [m["id"] for m in r.json()["movements"]] if r.status_code == 201 else []
                if r.status_code != 201:
                    self.error = f"{r.status_code} {r.text[:300]}"
                    return
                self.acked.append((time.monotonic(), ids))
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = repr(exc)
        finally:
            self.client.close()

    def wait_for(self, n: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < n and time.monotonic() < deadline and self.error is None and self.is_alive():
            time.sleep(0.01)
        assert self.error is None, self.error
        assert len(self.acked) >= n, f"only {len(self.acked)} writes answered in {timeout} s"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_backup_of_a_busy_server_restores_one_consistent_moment(kind: str, request: pytest.FixtureRequest,
                                                                 start_server: StartServer, tmp_path: Path) -> None:
    url = request.getfixturevalue("pg_database" if kind == "postgresql" else "sqlite_database")
    if kind == "sqlite":
        upgrade(url)
    db = Database(url)
    try:
        generate_demo(db, products=40, days=10, seed=5)
        with db.read() as session:
            skus = list(session.scalars(select(Product.sku).order_by(Product.id).limit(6)))
    finally:
        db.dispose()

    server = start_server(url)
    writer = Writer(server.base_url, server.create_key(), skus)
    writer.start()
    try:
        writer.wait_for(20)
        started = time.monotonic()
        backup = backup_cli(["backup", "--dest", str(tmp_path / "respaldos"), "--no-config"], server.env, server.cwd)
        finished = time.monotonic()
        assert backup.returncode == 0, backup.stdout + backup.stderr
        writer.wait_for(len(writer.acked) + 10)
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert writer.error is None, writer.error
    server.stop()  # the runbook: stop the services, then restore

    before = {i for at, ids in writer.acked if at < started for i in ids}
    during = [ids for at, ids in writer.acked if started <= at <= finished]
    after = {i for at, ids in writer.acked if at > finished for i in ids}
    assert during, "no write was answered while the backup ran; the test proved nothing"
    archive = next((tmp_path / "respaldos").glob("minimarket_*.tar.gz"))
    with tarfile.open(archive, "r:gz") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    live = Database(url)
    try:
        with live.read() as session:
            live_ids = set(session.scalars(select(Movement.id)))
    finally:
        live.dispose()

    started_restore = time.monotonic()
    restored = backup_cli(["restore", str(archive), "--yes"], server.env, server.cwd)
    restore_seconds = time.monotonic() - started_restore
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "Restauración verificada" in restored.stdout

    db = Database(url)
    try:
        with db.read() as session:
            ids = set(session.scalars(select(Movement.id)))
            report = verify_ledger(session)
    finally:
        db.dispose()
    assert len(ids) == manifest["tables"]["movimientos_stock"]["rows"]
    assert before <= ids, "a write answered before the backup started is missing"
    assert not ids & after, "a write answered after the backup finished was restored"
    assert ids == {i for i in live_ids if i <= max(ids)}, "the restored ledger has holes: not one moment"
    assert len(ids) < len(live_ids)
    assert report.ok, [m.problem for m in report.mismatches]
    measure(f"backup while writing ({kind})",
            f"backup {finished - started:.2f} s with {sum(len(d) for d in during)} movements written meanwhile; "
            f"restore {restore_seconds:.2f} s; {len(ids)} movements restored")

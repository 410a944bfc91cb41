#!/usr/bin/env python3
"""Load test of a running Mini Market with wrk: each scenario for a bounded time, on loopback only,
judged against the runbook's thresholds (P95 < 300 ms reads, < 500 ms writes, errors < 1 %).

Exit code: 0 every scenario passed, 1 at least one failed, 2 it could not run (see the message).
How to use it against a store: LOAD_TESTING.md beside this file.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenarios import MAX_ERROR_RATE, SCENARIOS, Plan, Scenario, SetupError, Target  # noqa: E402

LUA = Path(__file__).resolve().parent / "scenario.lua"
MAX_SECONDS = 300
MAX_CONNECTIONS = 64
WRK_TIMEOUT_S = 5


class UsageError(Exception):
    """The run cannot start: wrong target, missing tool or credential."""


def loopback_only(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url tiene que ser http://127.0.0.1:PUERTO (recibí {url!r})")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 80)}
    except socket.gaierror as exc:
        raise UsageError(f"no se resuelve {parts.hostname}: {exc}") from exc
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise UsageError(f"{parts.hostname} no es esta máquina: las pruebas de carga van sólo por loopback "
                         "(127.0.0.1), sobre una instancia de prueba (ver LOAD_TESTING.md)")


def check_credentials(scenarios: list[Scenario], target: Target) -> None:
    for scenario in scenarios:
        if scenario.needs == "api_key" and not target.api_key:
            raise UsageError(f"el escenario '{scenario.name}' necesita una clave: --api-key o MINIMARKET_API_KEY")
        if scenario.needs == "login" and not (target.username and target.password):
            raise UsageError(f"el escenario '{scenario.name}' necesita un usuario del dashboard: --username y la "
                             "contraseña en MINIMARKET_LOAD_PASSWORD")


def run_wrk(url: str, plan: Plan, seconds: int, connections: int, threads: int) -> dict:
    """One wrk run of `plan`; returns the JSON line scenario.lua prints."""
    with tempfile.TemporaryDirectory(prefix="mm-carga-") as tmp:
        requests_file = Path(tmp) / "requests.tsv"
        requests_file.write_text("".join(f"{m}\t{p}\t{b}\n" for m, p, b in plan.requests), encoding="utf-8")
        env = {**os.environ, "LOAD_REQUESTS": str(requests_file),
               "LOAD_HEADERS": "\n".join(f"{k}: {v}" for k, v in plan.headers.items())}
        if plan.idempotent_posts:
            env["LOAD_IDEMPOTENCY_PREFIX"] = f"carga-{uuid.uuid4().hex[:12]}"
        else:
            env.pop("LOAD_IDEMPOTENCY_PREFIX", None)
        command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                   "--timeout", f"{WRK_TIMEOUT_S}s", "-s", str(LUA), url]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("LOAD_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise UsageError(f"wrk falló (código {done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return json.loads(line.removeprefix("LOAD_RESULT "))


def judge(scenario: Scenario, raw: dict) -> dict:
    statuses = {int(k): v for k, v in raw["statuses"].items()}
    socket_errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    bad_answers = sum(v for k, v in statuses.items() if not 200 <= k < 300)
    attempts = raw["requests"] + raw["connect_errors"] + raw["timeouts"]
    error_rate = (bad_answers + socket_errors) / attempts if attempts else 1.0
    p95_ms = raw["p95_us"] / 1000
    problems = []
    if raw["requests"] == 0:
        problems.append("ninguna respuesta")
    if p95_ms >= scenario.p95_ms:
        problems.append(f"P95 {p95_ms:.0f} ms ≥ {scenario.p95_ms:.0f} ms")
    if error_rate >= MAX_ERROR_RATE:
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()) if not 200 <= k < 300)
        if socket_errors:
            detail = ", ".join(filter(None, [detail, f"conexión: {socket_errors}"]))
        problems.append(f"errores {error_rate:.1%} ≥ {MAX_ERROR_RATE:.0%} ({detail})")
        if 429 in statuses:
            problems.append("429: el límite por clave frenó la prueba (RATE_LIMIT_PER_KEY de la instancia de prueba)")
    seconds = raw["duration_us"] / 1e6 or 1
    return {"scenario": scenario.name, "requests": raw["requests"], "rps": round(raw["requests"] / seconds, 1),
            "p50_ms": round(raw["p50_us"] / 1000, 1), "p95_ms": round(p95_ms, 1), "p99_ms": round(raw["p99_us"] / 1000, 1),
            "error_rate": round(error_rate, 4), "statuses": statuses, "socket_errors": socket_errors,
            "p95_limit_ms": scenario.p95_ms, "passed": not problems, "problems": problems}


def print_table(results: list[dict]) -> None:
    print(f"{'escenario':<11} {'pedidos':>8} {'pedidos/s':>10} {'P50 ms':>8} {'P95 ms':>8} {'P99 ms':>8} "
          f"{'errores':>8} {'umbral P95':>11}  resultado")
    for r in results:
        verdict = "OK" if r["passed"] else "FALLA: " + "; ".join(r["problems"])
        print(f"{r['scenario']:<11} {r['requests']:>8} {r['rps']:>10.1f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} "
              f"{r['p99_ms']:>8.1f} {r['error_rate']:>8.2%} {r['p95_limit_ms']:>8.0f} ms  {verdict}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Pruebas de carga de Mini Market con wrk (ver LOAD_TESTING.md).")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="la instancia a probar (sólo loopback)")
    parser.add_argument("--scenario", action="append", choices=[*SCENARIOS, "all"],
                        help="escenario a correr (repetible); por defecto, todos")
    parser.add_argument("--duration", type=int, default=30, help=f"segundos por escenario (1 a {MAX_SECONDS})")
    parser.add_argument("--connections", type=int, default=8, help=f"conexiones simultáneas (1 a {MAX_CONNECTIONS})")
    parser.add_argument("--threads", type=int, default=1, help="hilos de wrk (≤ conexiones)")
    parser.add_argument("--api-key", default=os.environ.get("MINIMARKET_API_KEY"),
                        help="clave de API (lectura y escritura; por defecto MINIMARKET_API_KEY)")
    parser.add_argument("--username", default=os.environ.get("MINIMARKET_LOAD_USER"),
                        help="usuario del dashboard (la contraseña va en MINIMARKET_LOAD_PASSWORD)")
    parser.add_argument("--metrics-token", default=os.environ.get("METRICS_TOKEN"),
                        help="token de /metrics si la instancia lo pide (por defecto METRICS_TOKEN)")
    parser.add_argument("--json", action="store_true", help="el resultado en JSON, para scripts")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = list(SCENARIOS) if not args.scenario or "all" in args.scenario else list(dict.fromkeys(args.scenario))
    scenarios = [SCENARIOS[n] for n in names]
    target = Target(url=args.url.rstrip("/"), api_key=args.api_key, username=args.username,
                    password=os.environ.get("MINIMARKET_LOAD_PASSWORD"), metrics_token=args.metrics_token)
    try:
        if not 1 <= args.duration <= MAX_SECONDS:
            raise UsageError(f"--duration va de 1 a {MAX_SECONDS} segundos")
        if not 1 <= args.connections <= MAX_CONNECTIONS or not 1 <= args.threads <= args.connections:
            raise UsageError(f"--connections va de 1 a {MAX_CONNECTIONS} y --threads de 1 a --connections")
        if shutil.which("wrk") is None:
            raise UsageError("falta wrk: `apt-get install wrk`")
        loopback_only(target.url)
        check_credentials(scenarios, target)
        results = []
        with httpx.Client(base_url=target.url, timeout=30, trust_env=False, verify=False) as client:
            for scenario in scenarios:
                plan = scenario.prepare(client, target)
                raw = run_wrk(target.url, plan, args.duration, args.connections, args.threads)
                results.append(judge(scenario, raw))
    except (UsageError, SetupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"error: {target.url} no responde ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"url": target.url, "duration_s": args.duration, "connections": args.connections,
                          "results": results}, ensure_ascii=False))
    else:
        print_table(results)
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

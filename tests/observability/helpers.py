"""Shared by the observability tests: paths, external binaries, PromQL metric names, throwaway TLS."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import yaml

from tests.helpers import skip_outside_ci

ROOT = Path(__file__).resolve().parents[2]
OBS = ROOT / "observability"
PROM = OBS / "prometheus"
ALERTS = PROM / "alerts.yml"
RECORDING = PROM / "rules" / "recording.yml"
RULE_FILES = (ALERTS, RECORDING)
RULE_TESTS = sorted((PROM / "tests").glob("*.yml"))
ALERTMANAGER = OBS / "alertmanager"
DASHBOARDS = sorted((OBS / "grafana" / "dashboards").glob("*.json"))

# Debian packages that ship each binary (for the skip message).
PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager",
            "prometheus-postgres-exporter": "prometheus-postgres-exporter",
            "prometheus-alertmanager": "prometheus-alertmanager", "openssl": "openssl"}


def need_binary(name: str) -> str:
    """Path of an external tool; outside CI a missing tool skips the test, in CI it fails it."""
    path = shutil.which(name)
    if path is None:
        skip_outside_ci(f"{name} no está instalado (apt-get install {PACKAGES.get(name, name)})")
    return path


def need_module(name: str):  # noqa: ANN201
    """An optional test dependency; outside CI a missing one skips the test, in CI it fails it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        skip_outside_ci(f"falta el paquete {name} (pip install -e '.[dev]')")


def run(*args: str | Path, cwd: Path | None = None, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def rules(*paths: Path) -> list[dict]:
    return [rule for path in paths for group in load_yaml(path)["groups"] for rule in group["rules"]]


def alert_rules() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in rules(ALERTS)}


# --- Grafana ----------------------------------------------------------------------------------------

_GRAFANA_TIME_VARS = re.compile(r"\$\{?__(range|rate_interval|interval)(_ms|_s)?\}?")
_GRAFANA_VARS = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<expr>.+),\s*\w+\s*\)\s*$", re.DOTALL)


def substitute_grafana_variables(expr: str) -> str:
    """Plain PromQL from a panel query: time variables become 5m, the others a match-all regex."""
    return _GRAFANA_VARS.sub(".*", _GRAFANA_TIME_VARS.sub("5m", expr))


def panels(dashboard: dict) -> list[dict]:
    """Every panel, including those nested in collapsed rows."""
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def variable_query(variable: dict) -> str | None:
    """The PromQL inside a query variable (label_values(selector, label) -> selector)."""
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    if variable.get("type") != "query" or not query:
        return None
    match = _LABEL_VALUES.match(query)
    if match:
        return match["expr"]
    if query.strip().startswith(("label_values(", "label_names(", "metrics(")):
        return None  # no selector to check
    return query


def prometheus_queries(path: Path) -> list[tuple[str, str]]:
    """(where, expr) for every Prometheus query of a dashboard: panel targets and variables."""
    dashboard = load_json(path)
    found = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            datasource = target.get("datasource") or panel.get("datasource") or {}
            if datasource.get("type") == "prometheus" and target.get("expr"):
                found.append((f"{path.name}: panel {panel['id']} «{panel['title']}» {target['refId']}", target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        expr = variable_query(variable)
        if expr and (variable.get("datasource") or {}).get("type") == "prometheus":
            found.append((f"{path.name}: variable ${variable['name']}", expr))
    return found


# --- PromQL metric names ------------------------------------------------------------------------------

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:$])[A-Za-z_:][\w:]*")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
             "offset", "bool", "inf", "nan", "start", "end"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (functions, keywords and label names left out).

    Crude but sound for what we write: string literals, label matchers, range/subquery
    brackets and by/on/... label lists are blanked first; then an identifier followed by `(`
    is a function or aggregation and anything else is a metric name.
    """
    text = substitute_grafana_variables(expr)
    text = _STRINGS.sub('""', text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group()
        if name.lower() in _KEYWORDS or text[match.end():].lstrip().startswith("("):
            continue
        names.add(name)
    return names


def recorded_names(rule_files: Iterable[Path]) -> set[str]:
    return {rule["record"] for rule in rules(*rule_files) if "record" in rule}


def metric_usages(rule_files: Iterable[Path], dashboard_files: Iterable[Path]) -> dict[str, set[str]]:
    """Metric name -> where it is used (alert, recording rule, dashboard panel)."""
    usages: dict[str, set[str]] = {}
    for path in rule_files:
        for rule in rules(path):
            where = f"{path.name}: {rule.get('alert') or rule.get('record')}"
            for name in metric_names(rule["expr"]):
                usages.setdefault(name, set()).add(where)
    for path in dashboard_files:
        for where, expr in prometheus_queries(path):
            for name in metric_names(expr):
                usages.setdefault(name, set()).add(where)
    return usages


def find_metric_drift(rule_files: Iterable[Path], dashboard_files: Iterable[Path], *,
                      emitted: set[str], allowed: set[str]) -> dict[str, list[str]]:
    """Names used by alerts, recording rules or dashboards that nothing produces -> where used.

    A name with a colon must be a recording rule defined in `rule_files`; any other name must
    be emitted by the app or be in `allowed` (exporters' and Prometheus' own series).
    """
    rule_files = list(rule_files)
    recorded = recorded_names(rule_files)
    drift = {}
    for name, places in metric_usages(rule_files, dashboard_files).items():
        known = name in recorded if ":" in name else (name in emitted or name in allowed)
        if not known:
            drift[name] = sorted(places)
    return drift


def exposed_names(exposition: str) -> set[str]:
    """Series names an exposition declares, whether or not a labelled child exists yet."""
    from prometheus_client.parser import text_string_to_metric_families

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "gaugehistogram": ("_bucket", "_gsum", "_gcount"), "summary": ("", "_sum", "_count"),
                "info": ("_info",)}
    names = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


# --- configs with container paths ------------------------------------------------------------------


def with_local_paths(text: str, replacements: dict[str, Path | str]) -> str:
    """A config's text with container paths (/etc/...) pointed at local ones."""
    for old, new in replacements.items():
        text = text.replace(old, str(new).rstrip("/") + "/")
    return text

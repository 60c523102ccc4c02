"""deploy/prometheus/alerts.yml and deploy/grafana/tryon-dashboard.json are built on exactly
the metrics the gateway exports: every ``tryon_*`` name they use is one a scrape lists, every
expression parses as PromQL, and the dashboard shows every metric."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import promql_parser
import pytest
import yaml
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import ROOT

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tryon-dashboard.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$provider": ".*", "$model": ".*", "$route": ".*"}


@pytest.fixture
async def exported(make_app: Callable[..., Litestar]) -> dict[str, str]:
    """Every series name a scrape lists (``tryon_attempts_total``, ``..._bucket``, ...), mapped
    to its family's name."""
    async with AsyncTestClient(app=make_app(extra="[metrics]\nenabled = true")) as client:
        text = (await client.get("/metrics")).text
    names: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("tryon_"):
            for suffix in SUFFIXES[family.type]:
                names[family.name + suffix] = family.name
    return names


def alert_expressions() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule["alert"], rule["expr"]


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in board["templating"]["list"]:
        query = variable["definition"]
        metric = re.fullmatch(r"label_values\((\w+), *\w+\)", query)
        assert metric, f"variable {variable['name']}: unexpected query {query}"
        yield f"${variable['name']}", metric.group(1)


def used(expressions: Iterator[tuple[str, str]]) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for where, expression in expressions:
        for name in re.findall(r"\btryon_\w+", expression):
            names.setdefault(name, set()).add(where)
    return names


@pytest.mark.parametrize("source", [alert_expressions, dashboard_expressions])
def test_every_expression_parses_as_promql(source: Callable[[], Iterator[tuple[str, str]]]) -> None:
    for where, expression in source():
        for variable, value in GRAFANA_VARIABLES.items():
            expression = expression.replace(variable, value)
        try:
            promql_parser.parse(expression)
        except ValueError as exc:
            pytest.fail(f"{where}: {exc}: {expression}")


@pytest.mark.parametrize("source", [alert_expressions, dashboard_expressions])
def test_every_metric_used_is_one_the_gateway_exports(
    source: Callable[[], Iterator[tuple[str, str]]], exported: dict[str, str]
) -> None:
    unknown = {name: where for name, where in used(source()).items() if name not in exported}
    assert not unknown, f"not exported by the gateway: {unknown}"


def test_the_dashboard_shows_every_metric(exported: dict[str, str]) -> None:
    shown = {exported[name] for name in used(dashboard_expressions()) if name in exported}
    families = {f for f in exported.values() if not f.endswith("_created")}  # start times
    missing = families - shown - {"tryon_build_info"}
    assert not missing, f"the dashboard has no panel for {sorted(missing)}"


def test_the_alerts_cover_the_issues_named() -> None:
    names = {name for name, _ in alert_expressions()}
    covered = used(alert_expressions())
    for metric in (
        "tryon_http_requests_total",
        "tryon_attempts_total",
        "tryon_fallbacks_total",
        "tryon_jobs_queued",
        "tryon_webhook_deliveries_total",
        "tryon_credits_released_total",
    ):
        assert metric in covered, f"no alert rule uses {metric}"
    assert len(names) == len(list(alert_expressions())), "two alert rules share a name"

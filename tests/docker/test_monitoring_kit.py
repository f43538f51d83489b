"""docs/monitoring/: the alert rules and the Grafana dashboard use only metrics, labels and
label values the services export.

The exported names come from the services' own metric classes, each in a fresh registry
(:class:`WebhookMetrics`, :class:`RuntimeMetrics` and the restart action's
:class:`RestartMetrics`), so renaming a metric, a label or
an outcome value in the code fails here until the kit follows.
"""

from __future__ import annotations

import ast
import json
import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase
from support.paths import ROOT

import webhook.views  # noqa: F401 (defines, or imports, every refusal class)
from handlers.action_catalog import default_registry
from handlers.recording.metrics import GAVE_UP_REASONS, RestartMetrics
from handlers.runtime.metrics import RuntimeMetrics
from handlers.runtime.outcomes import OutcomeKind
from webhook.metrics import WebhookMetrics
from webhook.shared.refusals import Refusal
from webhook.shared.signature import SignatureFailure

ALERTS_FILE = ROOT / "docs" / "monitoring" / "alerts.yml"
DASHBOARD_FILE = ROOT / "docs" / "monitoring" / "dashboard.json"
PROMETHEUS_FILE = ROOT / "docker" / "prometheus.yml"
OPERATIONS_FILE = ROOT / "docs" / "operations.md"
RUNBOOK_PREFIX = "docs/operations.md#"

# Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
# Series Prometheus makes itself.
SYNTHETIC = {"up": frozenset(TARGET_LABELS)}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
METRIC_NAME = re.compile(r"\b(agora_[a-z0-9_]+|up)\b(?!\s*\()")
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


@dataclass(frozen=True)
class Family:
    name: str
    type: str
    labels: frozenset[str]

    def samples(self) -> dict[str, frozenset[str]]:
        """Sample name -> the labels it carries."""
        found = {}
        for suffix in SUFFIXES[self.type]:
            extra = {"le"} if suffix == "_bucket" else set()
            found[self.name + suffix] = self.labels | extra | TARGET_LABELS
        return found


def _families(registry: CollectorRegistry, wrappers: list[MetricWrapperBase]) -> list[Family]:
    labels = {w._name: frozenset(w._labelnames) for w in wrappers}
    return [
        Family(m.name, m.type, labels[m.name])
        for m in registry.collect()
        if m.name.startswith("agora_")
    ]


def _declared(metrics: WebhookMetrics | RuntimeMetrics | RestartMetrics) -> list[Family]:
    wrappers = [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]
    return _families(metrics.registry, wrappers)


def webhook_families() -> list[Family]:
    return _declared(WebhookMetrics())


def handler_families() -> list[Family]:
    return _declared(RuntimeMetrics())


def restart_families() -> list[Family]:
    """The restart action's own metrics (served by the handler process too)."""
    return _declared(RestartMetrics())


def exported() -> dict[str, frozenset[str]]:
    """Every sample name the two services expose -> its labels."""
    found: dict[str, frozenset[str]] = dict(SYNTHETIC)
    for family in [*webhook_families(), *handler_families(), *restart_families()]:
        found.update(family.samples())
    return found


def _labels_in_source(
    path: Path, collector: str, labelnames: tuple[str, ...], children: str | None = None
) -> set[tuple[str, str]]:
    """(label, value) pairs passed as literals to ``<...>.<collector>.labels(...)``, or to
    ``<...>.<children>(...)``, the collector's cached children (``webhook.metrics.Children``)."""
    found: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        labels_call = (node.func.attr == "labels" and isinstance(node.func.value, ast.Attribute)
                       and node.func.value.attr == collector)
        if not labels_call and (children is None or node.func.attr != children):
            continue
        for index, arg in enumerate(node.args):
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add((labelnames[index], arg.value))
        for keyword in node.keywords:
            if isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
                found.add((str(keyword.arg), keyword.value.value))
    return found


def _refusal_outcomes() -> set[str]:
    """The ``outcome`` of every refusal class (webhook.views loads every module defining one)."""
    found: set[str] = set()
    todo: list[type[Refusal]] = [Refusal]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if "outcome" in vars(cls):
            found.add(cls.outcome)
    return found


def known_label_values() -> dict[tuple[str, str], frozenset[str]]:
    """(sample-name prefix, label) -> every value the code sets, where the code says."""
    requests = _labels_in_source(ROOT / "webhook" / "views.py", "requests", ("outcome",),
                                 children="outcome")
    requests |= {("outcome", outcome) for outcome in _refusal_outcomes()}
    transactions = _labels_in_source(
        ROOT / "handlers" / "runtime" / "commits.py", "transactions", ("action", "result")
    )
    actions = frozenset(default_registry().names())
    found = {
        ("agora_webhook_requests", "outcome"): frozenset(v for _, v in requests),
        ("agora_webhook_signature_failures", "reason"): frozenset(
            r.value for r in SignatureFailure
        ),
        ("agora_handler_outcomes", "outcome"): frozenset(typing.get_args(OutcomeKind)),
        ("agora_handler_transactions", "result"): frozenset(
            v for label, v in transactions if label == "result"
        ),
        ("agora_restart_gave_up", "reason"): frozenset(GAVE_UP_REASONS),
    }
    for family in handler_families():
        found[(family.name, "action")] = actions
    return found


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]


def selectors(expr: str) -> Iterator[Selector]:
    """Every metric reference of a PromQL expression, with its label matchers."""
    with_braces = {m.start(1): m for m in SELECTOR.finditer(expr)}
    for match in METRIC_NAME.finditer(expr):
        braces = with_braces.get(match.start(1))
        matchers = tuple(MATCHER.findall(braces.group(2))) if braces else ()
        yield Selector(match.group(1), matchers)


def groupings(expr: str) -> list[set[str]]:
    return [
        {label.strip() for label in group.split(",") if label.strip()}
        for group in GROUPING.findall(expr)
    ]


def check_expression(expr: str, where: str) -> list[str]:
    """Problems with one expression: unknown metrics, labels or label values."""
    samples = exported()
    values = known_label_values()
    problems = []
    used = list(selectors(expr))
    if not used:
        problems.append(f"{where}: no metric in {expr!r}")
    available: set[str] = set()
    for selector in used:
        labels = samples.get(selector.metric)
        if labels is None:
            problems.append(f"{where}: metric {selector.metric} is not exported")
            continue
        available |= labels
        for label, op, value in selector.matchers:
            if label not in labels:
                problems.append(f"{where}: {selector.metric} has no label {label!r}")
                continue
            known = next((v for (prefix, name), v in values.items()
                          if name == label and selector.metric.startswith(prefix)), None)
            if known is None or "$" in value or op in ("!=", "!~"):
                continue
            wanted = set(value.split("|")) if op == "=~" else {value}
            unknown = {v for v in wanted if v not in known and v != ".*"}
            if unknown:
                problems.append(f"{where}: {selector.metric}{{{label}}} never takes {unknown}")
    for group in groupings(expr):
        missing = group - available
        if missing:
            problems.append(f"{where}: grouping by unknown labels {sorted(missing)}")
    return problems


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS_FILE.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return data


def dashboard_targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel, target


# --- the registries ------------------------------------------------------------------------------


def test_the_registries_are_read() -> None:
    webhook_names = {f.name for f in webhook_families()}
    handler_names = {f.name for f in handler_families()}
    assert {"agora_webhook_requests", "agora_webhook_publish_seconds"} <= webhook_names
    assert {"agora_handler_lag", "agora_handler_dead_letters"} <= handler_names
    assert [(f.name, f.labels) for f in restart_families()] == [
        ("agora_restart_gave_up", {"reason"})]
    samples = exported()
    assert samples["agora_webhook_requests_total"] >= {"outcome", "job"}
    assert "le" in samples["agora_webhook_publish_seconds_bucket"]
    assert "agora_handler_lag_total" not in samples  # gauges have no suffix
    assert known_label_values()[("agora_webhook_requests", "outcome")] >= {
        "accepted", "unavailable", "quarantined", "unauthorized"}
    assert known_label_values()[("agora_handler_transactions", "result")] == {
        "committed", "aborted"}


def test_the_checker_catches_renames() -> None:
    assert check_expression("rate(agora_webhook_requests_total[5m])", "ok") == []
    assert check_expression("rate(agora_webhook_request_total[5m])", "x")  # no such metric
    assert check_expression('agora_handler_lag{handler="restart"}', "x")  # no such label
    assert check_expression('agora_webhook_requests_total{outcome="refused"}', "x")  # value
    assert check_expression("sum by (reason) (agora_handler_lag)", "x")  # grouping
    assert check_expression("agora_handler_lag_total", "x")  # wrong suffix for a gauge
    assert check_expression('agora_restart_gave_up_total{reason="max_restarts"}', "ok") == []
    assert check_expression('agora_restart_gave_up_total{reason="cap"}', "x")  # value


# --- alerts.yml ----------------------------------------------------------------------------------


def test_every_alert_uses_exported_metrics_labels_and_values(rules: list[dict[str, Any]]) -> None:
    problems = [p for rule in rules for p in check_expression(rule["expr"], rule["alert"])]
    assert not problems, "\n".join(problems)


def test_alert_rules_are_complete_and_unique(rules: list[dict[str, Any]]) -> None:
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["labels"]["service"] in {"webhook", "handlers"}, rule["alert"]
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), (
            rule["alert"])
        if "for" in rule:
            assert re.fullmatch(r"[0-9]+[smh]", rule["for"]), rule["alert"]


def anchors(markdown: str) -> set[str]:
    """The link anchors of a Markdown file's headings, as GitHub makes them: lower case,
    punctuation other than ``-`` and ``_`` dropped, spaces to ``-``, repeats numbered."""
    found: set[str] = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = re.match(r"(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if in_code or not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(2).strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in found:
            n += 1
            anchor = f"{slug}-{n}"
        found.add(anchor)
    return found


def test_anchors_are_made_the_way_github_makes_them() -> None:
    text = ("# Operations\n## 3 a.m. runbook\n```\n# not a heading\n```\n"
            "### `agora_x` (y)\n## A\n## A\n")
    assert anchors(text) == {"operations", "3-am-runbook", "agora_x-y", "a", "a-1"}


def test_every_alert_links_an_existing_runbook_section(rules: list[dict[str, Any]]) -> None:
    sections = anchors(OPERATIONS_FILE.read_text(encoding="utf-8"))
    missing = []
    for rule in rules:
        url = rule["annotations"].get("runbook_url", "")
        assert url.startswith(RUNBOOK_PREFIX), f"{rule['alert']}: runbook_url {url!r}"
        if url.removeprefix(RUNBOOK_PREFIX) not in sections:
            missing.append(f"{rule['alert']}: no section #{url.removeprefix(RUNBOOK_PREFIX)}")
    assert not missing, "\n".join(missing)
    # The check can fail: a rule pointing at a section that is not there.
    assert "agorawebhookexploded" not in sections


def test_annotations_only_use_labels_the_expression_keeps(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        text = " ".join(rule["annotations"].values())
        used = set(re.findall(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)", text))
        for group in groupings(rule["expr"]):
            assert used <= group, f"{rule['alert']}: {used - group} are aggregated away"
        if re.match(r"\s*sum\s*\(", rule["expr"]):
            assert not used, f"{rule['alert']}: a bare sum() keeps no label"


def test_alerts_cover_what_operators_need(rules: list[dict[str, Any]]) -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in rules}
    wanted = {
        "503 answers": r'agora_webhook_requests_total\{outcome="unavailable"\}',
        "500 answers": r"agora_webhook_request_seconds_count",
        "signature failures": r"agora_webhook_signature_failures_total",
        "publish latency p99": r"histogram_quantile\(0\.99.*agora_webhook_publish_seconds_bucket",
        "dead letters": r"agora_handler_dead_letters_total",
        "lag": r"agora_handler_lag\b",
        "stale loop": r"agora_handler_last_loop_timestamp_seconds",
        "stopped loop": r"agora_handler_up == 0",
        "restart failed": r'action="restart", outcome="failed"',
        "restart gave up": r'agora_restart_gave_up_total\{reason="max_restarts"\}',
        "retries": r"agora_handler_retries_total",
        "scrape down": r'up\{job="agora-(webhook|handlers)"\}',
    }
    for need, pattern in wanted.items():
        assert any(re.search(pattern, e, re.S) for e in exprs.values()), need


def test_scrape_jobs_match_the_prometheus_config(
    rules: list[dict[str, Any]], dashboard: dict[str, Any]
) -> None:
    scrape_configs = yaml.safe_load(PROMETHEUS_FILE.read_text())["scrape_configs"]
    jobs = {job["job_name"] for job in scrape_configs}
    exprs = [rule["expr"] for rule in rules] + [t["expr"] for _, t in dashboard_targets(dashboard)]
    used = {value for e in exprs for s in selectors(e) for label, _, value in s.matchers
            if label == "job"}
    assert used
    assert used <= jobs


# --- dashboard.json ------------------------------------------------------------------------------


def test_every_panel_query_uses_exported_metrics_labels_and_values(
    dashboard: dict[str, Any],
) -> None:
    problems = [
        p for panel, target in dashboard_targets(dashboard)
        for p in check_expression(target["expr"], f"panel {panel['title']!r}")
    ]
    assert not problems, "\n".join(problems)


def test_every_exported_metric_is_on_the_dashboard(dashboard: dict[str, Any]) -> None:
    exprs = " ".join(t["expr"] for _, t in dashboard_targets(dashboard))
    used = {s.metric for s in selectors(exprs)}
    for family in [*webhook_families(), *handler_families(), *restart_families()]:
        assert used & set(family.samples()), f"{family.name} has no panel"


def test_dashboard_structure(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"]
    assert dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert "datasource" in variables
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & mine, f"panel {panel['title']!r} overlaps another"
        cells |= mine
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids, panel["title"]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            for name in re.findall(r"\$([a-zA-Z_]+)", target["expr"]):
                assert name.startswith("__") or name in variables, (panel["title"], name)

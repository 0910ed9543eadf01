"""The operator's dashboard and alerts (deploy/, README "Monitoring"), checked by reading them:
the rules' structure, every PromQL expression parsed by a real PromQL parser (promql-parser, the
Rust one), every metric they name exported by the bot's and the workers' registry, and the
compose profile that wires Prometheus and Grafana to the bot. With promtool on PATH (it comes
with Prometheus, not from PyPI or npm) its own checks and the rules' unit tests run too."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest

import generation.metrics  # noqa: F401 - registers the bot's and the workers' metrics

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "pokemon-bot.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "pokemon-bot.yml"
# Series Prometheus makes itself for every target, not the bot's to export.
PROMETHEUS_OWN = {"up"}
SEVERITIES = {"critical", "warning"}
# Grafana's built-in interval variables, as Grafana substitutes them before querying.
GRAFANA_BUILTINS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "6h"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text("utf-8"))


def exported_names() -> set[str]:
    """Every series name the registry serves (what /metrics carries), by each family's type:
    a counter `x` is `x_total` and `x_created`, a histogram `x_bucket`, `x_count`, `x_sum`...
    Families with labels and no child yet still count: they declare their type."""
    names: set[str] = set()
    text = generate_latest(REGISTRY).decode()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("_count", "_sum", "_created", ""),
        "gauge": ("",),
        "untyped": ("",),
    }
    for line in text.splitlines():
        match = re.match(r"# TYPE (\S+) (\S+)", line)
        if match:
            name, kind = match.groups()
            base = name.removesuffix("_total") if kind == "counter" else name
            names.update(base + suffix for suffix in suffixes[kind])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def metric_names(expr: str) -> set[str]:
    names = set()
    for selector in selectors(expr):
        assert selector.name, f"a selector without a metric name in {expr!r}"
        names.add(selector.name)
    return names


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text("utf-8"))


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expression) for every query, Grafana's variables substituted as Grafana
    does before it sends the query (`$job` by the dashboard's own value)."""
    board = dashboard()
    values = {f"${v['name']}": v["current"]["value"] for v in board["templating"]["list"]}
    values.update(GRAFANA_BUILTINS)
    queries = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name in sorted(values, key=len, reverse=True):
                expr = expr.replace(name, values[name])
            assert "$" not in expr, f"{panel['title']}: an unknown variable in {expr!r}"
            queries.append((panel["title"], expr))
    return queries


def scrape_jobs() -> dict[str, list[str]]:
    return {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in load_yaml(PROMETHEUS)["scrape_configs"]
    }


# --- the alert rules -------------------------------------------------------------------------


def test_the_rules_file_has_the_structure_prometheus_loads() -> None:
    document = load_yaml(RULES)
    assert set(document) == {"groups"}
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"}
        assert group["name"]
        assert group["rules"]
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)), "alert names repeat"
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
        assert re.fullmatch(r"[A-Z][A-Za-z]+", rule["alert"]), rule["alert"]
        assert promql_parser.parse_duration(rule["for"]).total_seconds() > 0
        assert rule["labels"]["severity"] in SEVERITIES
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_every_alert_expression_parses_as_promql(rule: dict[str, Any]) -> None:
    promql_parser.parse(rule["expr"])


def test_the_parser_refuses_what_prometheus_refuses() -> None:
    """The check above can fail: broken PromQL is an error, not a pass."""
    for broken in ("rate(pokemon_jobs_total[5m]", "pokemon_jobs_total{outcome=}", "nope(x)"):
        with pytest.raises(ValueError, match=r"."):
            promql_parser.parse(broken)


def test_the_alerts_the_issue_asks_for_exist_on_the_metrics_they_need() -> None:
    by_name = {rule["alert"]: metric_names(rule["expr"]) for rule in rules()}
    assert "pokemon_queue_length" in by_name["PokemonQueueStuck"]
    assert "pokemon_jobs_total" in by_name["PokemonQueueStuck"]
    assert "pokemon_workers_online" in by_name["PokemonNoWorkerOnline"]
    assert "pokemon_jobs_total" in by_name["PokemonFailureRateHigh"]
    assert "pokemon_disk_free_bytes" in by_name["PokemonDiskAlmostFull"]
    assert "pokemon_disk_free_bytes" in by_name["PokemonDiskFillingUp"]


def test_every_metric_the_rules_name_is_exported() -> None:
    exported = exported_names() | PROMETHEUS_OWN
    missing = {
        rule["alert"]: sorted(metric_names(rule["expr"]) - exported)
        for rule in rules()
        if metric_names(rule["expr"]) - exported
    }
    assert missing == {}


def test_the_name_check_catches_a_metric_nobody_exports() -> None:
    assert "pokemon_jobs_total" in exported_names()
    assert "pokemon_time_to_picture_seconds_bucket" in exported_names()
    assert "pokemon_job_total" not in exported_names()  # a typo is caught
    assert metric_names('sum(rate(pokemon_job_total{outcome="done"}[5m]))') == {"pokemon_job_total"}


def test_bot_only_alerts_select_the_bots_scrape_job() -> None:
    """A worker's registry also has `pokemon_workers_online` (always 0): the no-worker alert
    must read the bot's, by the job name prometheus.yml gives it."""
    [bot_job] = [name for name in scrape_jobs() if name == "pokemon-bot"]
    [rule] = [rule for rule in rules() if rule["alert"] == "PokemonNoWorkerOnline"]
    [selector] = selectors(rule["expr"])
    assert str(selector.matchers) == f'{{job="{bot_job}"}}'


# --- the dashboard ---------------------------------------------------------------------------


def test_the_dashboard_is_provisioned_from_where_compose_mounts_it() -> None:
    board = dashboard()
    assert board["uid"] == "pokemon-bot"
    assert board["title"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    [datasource] = load_yaml(DATASOURCES)["datasources"]
    assert datasource["type"] == "prometheus"
    for panel in board["panels"]:
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": datasource["uid"]}
    [provider] = load_yaml(PROVIDERS)["providers"]
    assert provider["type"] == "file"
    mounted = mounts("grafana")
    assert mounted[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    assert mounted["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"


@pytest.mark.parametrize(("title", "expr"), dashboard_queries())
def test_every_dashboard_query_parses_as_promql(title: str, expr: str) -> None:
    promql_parser.parse(expr)


def test_every_metric_the_dashboard_names_is_exported() -> None:
    exported = exported_names() | PROMETHEUS_OWN
    missing = {
        title: sorted(metric_names(expr) - exported)
        for title, expr in dashboard_queries()
        if metric_names(expr) - exported
    }
    assert missing == {}


def test_the_dashboard_shows_what_operators_need() -> None:
    by_panel: dict[str, set[str]] = {}
    exprs: dict[str, list[str]] = {}
    for title, expr in dashboard_queries():
        by_panel.setdefault(title, set()).update(metric_names(expr))
        exprs.setdefault(title, []).append(expr)
    assert "pokemon_queue_length" in by_panel["Queue"]
    assert any("sum by (outcome)" in e for e in exprs["Jobs per minute by outcome"])
    first = exprs["Time to first picture"]
    for quantile in ("0.5", "0.95"):
        assert any(
            e.startswith(f"histogram_quantile({quantile},")
            and "pokemon_time_to_picture_seconds_bucket" in e
            for e in first
        ), quantile
    assert {"pokemon_workers_online", "pokemon_running_jobs"} <= by_panel[
        "GPU workers: online and busy"
    ]
    assert {"pokemon_jobs_total", "pokemon_discord_api_errors_total"} <= by_panel[
        "Errors per minute"
    ]


def test_the_dashboard_reads_the_bot_by_its_scrape_job() -> None:
    variables = {v["name"]: v["current"]["value"] for v in dashboard()["templating"]["list"]}
    assert variables["job"] in scrape_jobs()
    assert variables["worker_job"] == "pokemon-worker"  # the commented job in prometheus.yml
    assert "job_name: pokemon-worker" in PROMETHEUS.read_text("utf-8")


# --- the compose profile ---------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return load_yaml(ROOT / "docker-compose.yml")


def mounts(service: str) -> dict[str, str]:
    """Container path → host path of a service's bind mounts."""
    found = {}
    for volume in compose()["services"][service]["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            found[target] = source
    return found


def test_the_monitoring_profile_starts_prometheus_and_grafana_only_when_asked() -> None:
    services = compose()["services"]
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    assert "profiles" not in services["bot"]
    for name in ("prometheus", "grafana"):
        service = services[name]
        image, _, tag = service["image"].partition(":")
        assert re.search(r"\d", tag), f"{image} is not pinned to a version"
        for port in service["ports"]:
            assert port.startswith("127.0.0.1:"), f"{name} must not listen on every interface"
        for volume in service["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_dir(), source
            else:
                assert source in compose()["volumes"], source


def test_prometheus_scrapes_the_bots_metrics_port_and_loads_the_rules() -> None:
    services = compose()["services"]
    port = services["bot"]["environment"]["POKEMON_METRICS_PORT"]
    assert scrape_jobs()["pokemon-bot"] == [f"bot:{port}"]
    mounted = mounts("prometheus")
    assert mounted["/etc/prometheus"] == "./deploy/prometheus"
    command = services["prometheus"]["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in command
    config = load_yaml(PROMETHEUS)
    assert [(PROMETHEUS.parent / path).resolve() for path in config["rule_files"]] == [
        RULES.resolve()
    ]


def test_grafanas_datasource_is_the_compose_prometheus() -> None:
    [datasource] = load_yaml(DATASOURCES)["datasources"]
    services = compose()["services"]
    [published] = services["prometheus"]["ports"]
    assert datasource["url"] == f"http://prometheus:{published.rsplit(':', 1)[1]}"
    assert services["grafana"]["depends_on"] == ["prometheus"]
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"/etc/grafana/dashboards/{DASHBOARD.name}"


# --- promtool, where installed ---------------------------------------------------------------

PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not on PATH (it is not on PyPI or npm)")
@pytest.mark.parametrize(
    "args",
    [
        ["check", "rules", str(RULES)],
        ["check", "config", str(PROMETHEUS)],
        ["test", "rules", str(RULES.with_name("rules.test.yml"))],
    ],
    ids=["check-rules", "check-config", "rule-unit-tests"],
)
def test_promtool_accepts_the_rules_and_their_unit_tests(args: list[str]) -> None:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr

"""deploy/: the Grafana dashboard, the compose file, the Kubernetes manifests and the Dockerfile are well formed and
agree with the code (metric names, ports, probes, playbooks). No image is built here (no Docker engine)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from recovery.metrics import Metrics
from tests.promtool import run_promtool
from tests.test_metrics import exercise_every_metric

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "recovery.json"
RULES = DEPLOY / "prometheus" / "recovery.rules.yml"
K8S = DEPLOY / "k8s"
PROMTOOL_SETUP_TIMEOUT_S = 900
METRIC_NAME = re.compile(r"\brecovery[_:][a-zA-Z0-9_:]*")


def exposed_names() -> set[str]:
    """Every sample name `Metrics` exposes (with `_total`, `_bucket`, `_count`... as Prometheus sees them)."""
    registry = CollectorRegistry()
    exercise_every_metric(Metrics(registry))
    return {sample.name for family in registry.collect() for sample in family.samples}


def recorded_names() -> set[str]:
    rules = yaml.safe_load(RULES.read_text())
    return {rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


class TestDashboard:
    def test_parses_and_has_the_panels_asked_for(self) -> None:
        dashboard = json.loads(DASHBOARD.read_text())
        assert dashboard["uid"] == "recovery"
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        titles = " | ".join(panel["title"].lower() for panel in dashboard["panels"])
        for wanted in (
            "events/s",
            "lag",
            "effects by playbook",
            "open and overdue",
            "outcomes",
            "spend",
            "percentiles",
        ):
            assert wanted in titles, wanted

    def test_every_metric_the_dashboard_names_exists(self) -> None:
        exposed, recorded = exposed_names(), recorded_names()
        named = {name for expr in dashboard_exprs() for name in METRIC_NAME.findall(expr)}
        assert named, "no recovery metric found in the dashboard"
        unknown = {name for name in named if name not in exposed and name not in recorded}
        assert not unknown, f"the dashboard names metrics recovery does not expose: {sorted(unknown)}"

    def test_every_metric_family_is_on_the_dashboard(self) -> None:
        named = {name for expr in dashboard_exprs() for name in METRIC_NAME.findall(expr)}
        bases = {re.sub(r"_(total|bucket|count|sum|info)$", "", name) for name in named}
        registry = CollectorRegistry()
        Metrics(registry)
        families = {family.name for family in registry.collect()}
        assert families - bases == set()

    def test_the_datasource_is_the_provisioned_one(self) -> None:
        datasources = yaml.safe_load(
            (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
        )
        uids = {source["uid"] for source in datasources["datasources"]}
        dashboard = json.loads(DASHBOARD.read_text())
        for panel in dashboard["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] in uids, panel["title"]

    @pytest.mark.timeout(PROMTOOL_SETUP_TIMEOUT_S)
    def test_every_expression_is_valid_promql(self, tmp_path: Path) -> None:
        # promtool parses a rule file's expressions: wrap each panel's query in a recording rule.
        rules = [
            {"record": f"dashboard:expr{n}", "expr": expr.replace("$__rate_interval", "5m")}
            for n, expr in enumerate(dashboard_exprs())
        ]
        path = tmp_path / "dashboard.rules.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        done = run_promtool("check", "rules", str(path))
        assert done.returncode == 0, done.stdout + done.stderr


class TestCompose:
    def test_services_images_and_mounts(self) -> None:
        compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
        services = compose["services"]
        assert set(services) == {"kafka", "postgres", "recovery", "prometheus", "grafana"}
        assert services["kafka"]["image"] == "apache/kafka:4.1.1"
        assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert services["postgres"]["image"] == "postgres:16"
        assert services["prometheus"]["image"].startswith("prom/prometheus:")
        assert services["grafana"]["image"].startswith("grafana/grafana:")
        assert services["recovery"]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        for service in services.values():
            for volume in service.get("volumes", []):
                source = volume.split(":", 1)[0]
                if source.startswith("."):
                    assert (DEPLOY / source).exists(), volume

    def test_recovery_points_at_the_broker_and_the_store_of_the_stack(self) -> None:
        compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
        env = compose["services"]["recovery"]["environment"]
        assert all(key.startswith("RECOVERY_") for key in env)
        listeners = compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        assert f"//{env['RECOVERY_KAFKA_BOOTSTRAP_SERVERS']}" in listeners
        assert env["RECOVERY_STORE_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in env["RECOVERY_STORE_URL"]


class TestKubernetes:
    def test_manifests_parse_with_the_expected_kinds(self) -> None:
        kinds = {doc["kind"] for path in K8S.glob("*.yaml") for doc in yaml_documents(path)}
        assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "Kustomization"} <= kinds
        kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
        listed = set(kustomization["resources"])
        assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}

    def test_the_deployment_has_probes_limits_and_runs_as_non_root(self) -> None:
        (deployment,) = yaml_documents(K8S / "deployment.yaml")
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        (container,) = spec["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert [port["containerPort"] for port in container["ports"]] == [8000]
        env = {item["name"]: item for item in container["env"]}
        assert "secretKeyRef" in env["RECOVERY_STORE_URL"]["valueFrom"]
        mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
        assert env["RECOVERY_RULES_DIR"]["value"] == mounts["rules"]
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert volumes["rules"]["configMap"]["name"] == "recovery-playbooks"

    def test_the_service_and_the_budget_select_the_pods(self) -> None:
        (deployment,) = yaml_documents(K8S / "deployment.yaml")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        (service,) = yaml_documents(K8S / "service.yaml")
        (budget,) = yaml_documents(K8S / "poddisruptionbudget.yaml")
        assert service["spec"]["selector"].items() <= labels.items()
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()

    def test_the_playbook_configmap_holds_the_shipped_playbooks(self) -> None:
        (configmap,) = yaml_documents(K8S / "configmap-playbooks.yaml")
        shipped = {p.name: p.read_text() for p in (ROOT / "rules").glob("*.yaml") if not p.name.endswith(".test.yaml")}
        assert configmap["data"] == shipped


class TestDockerfile:
    @pytest.fixture
    def instructions(self) -> list[tuple[str, str]]:
        text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]

    def test_multi_stage_slim_and_non_root(self, instructions: list[tuple[str, str]]) -> None:
        froms = [arg for op, arg in instructions if op == "FROM"]
        assert len(froms) >= 2
        assert froms[-1].startswith("python:${PYTHON_VERSION}-slim")
        assert ("ARG", "PYTHON_VERSION=3.11") in instructions
        users = [arg for op, arg in instructions if op == "USER"]
        assert users and users[-1].split(":")[0] not in {"root", "0"}
        builder = " ".join(arg for op, arg in instructions[: instructions.index(("FROM", froms[-1]))] if op == "RUN")
        assert all(tool in builder.split() for tool in ("gcc", "g++", "make"))

    def test_the_builder_compiles_the_hot_modules(self, instructions: list[tuple[str, str]]) -> None:
        """The image runs what `make test` tests on 3.11 and `make bench` measures: setup.py's mypyc build."""
        runtime = instructions.index(next(i for i in reversed(instructions) if i[0] == "FROM"))
        builder = " ".join(arg for op, arg in instructions[:runtime] if op == "RUN")
        assert "RECOVERY_COMPILE=1" in builder.split() and "--no-build-isolation" in builder.split()
        assert any(word.strip('"').startswith("mypy") for word in builder.split())
        assert any(op == "COPY" and "setup.py" in arg.split() for op, arg in instructions[:runtime])
        ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        assert "!setup.py" in ignored and "**/*.so" in ignored  # the builder compiles its own

    def test_the_image_has_the_confluent_producer(self, instructions: list[tuple[str, str]]) -> None:
        """`RECOVERY_KAFKA_PRODUCER=confluent-kafka` works in the image: the extra is built and installed."""
        runs = [arg for op, arg in instructions if op == "RUN"]
        assert any('".[confluent]"' in run.split() and "wheel" in run.split() for run in runs)
        assert any('"recovery[confluent]"' in run.split() and "install" in run.split() for run in runs)

    def test_rules_entrypoint_and_healthcheck(self, instructions: list[tuple[str, str]]) -> None:
        args = {op: arg for op, arg in instructions}
        assert any(op == "COPY" and arg.startswith("rules ") for op, arg in instructions)
        assert json.loads(args["ENTRYPOINT"]) == ["recovery"]
        assert json.loads(args["CMD"]) == ["serve"]
        assert "/healthz" in args["HEALTHCHECK"] and ":8000" in args["HEALTHCHECK"]
        assert args["EXPOSE"] == "8000"

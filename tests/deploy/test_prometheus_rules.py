"""deploy/prometheus: the alerting rules and the scrape configuration pass promtool's checks, and the rules'
unit tests (recovery.rules.test.yml) pass. promtool comes from deploy/prometheus/install.sh when missing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.promtool import run_promtool

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "recovery.rules.yml"
RULE_TESTS = PROMETHEUS_DIR / "recovery.rules.test.yml"
PROMTOOL_SETUP_TIMEOUT_S = 900
"""The first promtool test may install the prometheus package first."""
ALERTS = {
    "RecoveryDown",
    "RecoveryConsumerLagGrowing",
    "RecoveryDeadLetterRate",
    "RecoveryOverdueTasksPilingUp",
    "RecoveryGestureSpendOverBudget",
    "RecoveryStoreErrors",
    "RecoveryOutboxParked",
}


@pytest.mark.timeout(PROMTOOL_SETUP_TIMEOUT_S)
def test_promtool_check_rules() -> None:
    done = run_promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(PROMTOOL_SETUP_TIMEOUT_S)
def test_promtool_test_rules() -> None:
    done = run_promtool("test", "rules", RULE_TESTS.name, cwd=PROMETHEUS_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.timeout(PROMTOOL_SETUP_TIMEOUT_S)
def test_promtool_check_config() -> None:
    done = run_promtool("check", "config", "prometheus.yml", cwd=PROMETHEUS_DIR)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    assert alerts == ALERTS
    tests = yaml.safe_load(RULE_TESTS.read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert firing == ALERTS
    assert quiet == ALERTS


def test_the_scrape_config_scrapes_recovery_on_port_8000() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "recovery"]
    assert job["metrics_path"] == "/metrics"
    assert [t.rsplit(":", 1)[1] for c in job["static_configs"] for t in c["targets"]] == ["8000"]

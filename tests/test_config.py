from __future__ import annotations

from pathlib import Path

import pytest

from recovery.config import ConfigError, Settings


def test_defaults_are_the_documented_ones() -> None:
    s = Settings.load(environ={})
    assert (s.kafka_bootstrap_servers, s.store_url, s.group_id, s.http_port) == (
        "127.0.0.1:9092",
        "sqlite:///recovery.db",
        "recovery",
        8000,
    )
    assert (s.topic_events, s.topic_tasks, s.topic_gestures, s.topic_dlq) == (
        "ops.events",
        "recovery.tasks",
        "recovery.gestures",
        "recovery.dlq",
    )


@pytest.mark.parametrize("suffix", [".yaml", ".toml"])
def test_environment_overrides_the_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"recovery{suffix}"
    if suffix == ".yaml":
        path.write_text("group_id: from-file\nhttp_port: 9000\n")
    else:
        path.write_text('group_id = "from-file"\nhttp_port = 9000\n')
    s = Settings.load(path, environ={"RECOVERY_HTTP_PORT": "9100"})
    assert (s.group_id, s.http_port) == ("from-file", 9100)


def test_a_bad_value_names_the_setting_and_its_variable() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(environ={"RECOVERY_HTTP_PORT": "eighty"})
    assert "setting 'http_port' (RECOVERY_HTTP_PORT) has value 'eighty'" in str(info.value)


def test_unknown_file_keys_and_secrets(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("grup_id: x\n")
    with pytest.raises(ConfigError, match="grup_id"):
        Settings.load(path, environ={})
    s = Settings.load(environ={"RECOVERY_KAFKA_SASL_PASSWORD": "hunter2"})
    assert "hunter2" not in repr(s)
    assert s.kafka_sasl_password is not None and s.kafka_sasl_password.get_secret_value() == "hunter2"


def test_unreadable_or_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.load(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("= nope")
    with pytest.raises(ConfigError, match="not valid toml"):
        Settings.load(bad, environ={})


def test_kafka_security_settings_pass_through_to_kafka_python() -> None:
    settings = Settings.load(
        None,
        environ={
            "RECOVERY_KAFKA_BOOTSTRAP_SERVERS": "b1:9093,b2:9093",
            "RECOVERY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "RECOVERY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "RECOVERY_KAFKA_SASL_USERNAME": "recovery",
            "RECOVERY_KAFKA_SASL_PASSWORD": "s3cret",
            "RECOVERY_KAFKA_SSL_CAFILE": "/etc/ca.pem",
        },
    )
    assert settings.kafka_config() == {
        "bootstrap_servers": ["b1:9093", "b2:9093"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "recovery",
        "sasl_plain_password": "s3cret",
        "ssl_cafile": "/etc/ca.pem",
    }
    assert "s3cret" not in repr(settings)
    assert Settings.load(None, environ={}).kafka_config() == {
        "bootstrap_servers": ["127.0.0.1:9092"],
        "security_protocol": "PLAINTEXT",
    }


def test_the_body_limit_setting() -> None:
    assert Settings.load(environ={}).http_max_body_bytes == 1_048_576
    assert Settings.load(environ={"RECOVERY_HTTP_MAX_BODY_BYTES": "2048"}).http_max_body_bytes == 2048
    with pytest.raises(ConfigError, match=r"'http_max_body_bytes' \(RECOVERY_HTTP_MAX_BODY_BYTES\) has value '0'"):
        Settings.load(environ={"RECOVERY_HTTP_MAX_BODY_BYTES": "0"})


def test_the_task_page_settings() -> None:
    s = Settings.load(environ={})
    assert (s.http_cookie_secure, s.http_token_in_url) == (False, False)
    s = Settings.load(environ={"RECOVERY_HTTP_COOKIE_SECURE": "true", "RECOVERY_HTTP_TOKEN_IN_URL": "1"})
    assert (s.http_cookie_secure, s.http_token_in_url) == (True, True)

"""Settings: one frozen model, read from a YAML/TOML file and `RECOVERY_*` environment variables.

Only this module reads the environment. Environment variables override the file (DESIGN.md, configuration).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from recovery.exceptions import RecoveryError
from recovery.runtime import DEFAULT_GC_GEN0_THRESHOLD


class ConfigError(RecoveryError):
    """A setting is missing or invalid; the message names the setting, its environment variable and value."""


Role = Literal["frontline", "ops", "admin"]


class ApiToken(BaseModel):
    """A bearer token of the HTTP API, stored as the SHA-256 of the token (hex): the token itself is never kept.
    `name` is who acts with it (the audit trail's actor); `role` what it may do (frontline < ops < admin)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$", max_length=100)
    role: Role
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


def _json_list(value: Any) -> Any:
    """A list given as JSON text (from an environment variable)."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else []
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON list: {exc}") from None
    return value


class Settings(BaseSettings):
    """Everything `recovery serve` can be told. Units live in the names."""

    model_config = SettingsConfigDict(env_prefix="RECOVERY_", frozen=True, extra="forbid")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_producer: Literal["kafka-python", "confluent-kafka"] = "kafka-python"
    """The outbox's Kafka producer: kafka-python's, or confluent-kafka's (librdkafka, in C: `pip install
    'recovery[confluent]'`), which takes a tenth of the loop's time per message published (docs/operations.md,
    "Capacity")."""
    kafka_consumer: Literal["kafka-python", "confluent-kafka"] = "kafka-python"
    """The service loop's consumer group member: kafka-python's, or confluent-kafka's (librdkafka fetches and parses
    records on threads of its own; `pip install 'recovery[confluent]'`). Instances of either kind share a group."""
    kafka_session_timeout_s: float = Field(default=10.0, ge=1)
    """How soon the group notices a dead instance and gives its partitions to the others."""
    store_url: str = "sqlite:///recovery.db"
    sqlite_checkpoint_every_s: float = Field(default=0.5, ge=0)
    """SQLite store of the service loop: copy its write-ahead log into the database file this often, from a thread
    of its own, rather than in the loop's commits; 0 leaves it to the commits (SQLite's default)."""
    sqlite_cache_mb: int = Field(default=128, ge=0)
    """SQLite store of the service loop: its page cache, in MiB (SQLite's default is 2 MiB; 0 keeps it). With 2 MiB
    a batch's index lookups read pages from the file again and again, and its transaction spills dirty pages to
    the write-ahead log before it commits (bench.end_to_end: 2.2 GB read per drain instead of 0.16 GB). The cache
    holds pages the loop uses, up to this much of the process's memory."""
    rules_dir: Path = Path("rules")
    group_id: str = "recovery"
    http_port: int = Field(default=8000, ge=1, le=65535)
    http_max_body_bytes: int = Field(default=1_048_576, ge=1)
    """The largest request body the HTTP side accepts (1 MiB): a larger one is answered 413, as soon as its
    `Content-Length` says so or, streamed, as soon as it passes the limit, before anything holds it all."""
    http_cookie_secure: bool = False
    """Mark the task page's cookie `Secure` (the browser sends it back over HTTPS only): set it when the page is
    served over TLS, by the service or a proxy in front of it."""
    http_token_in_url: bool = False
    """Let `/?token=TOKEN` sign in to the task page: the demo's link (`make demo` turns it on). Off by default: a
    token in a URL stays in browser history and proxy logs; the sign-in form is the way in."""
    topic_events: str = "ops.events"
    topic_tasks: str = "recovery.tasks"
    topic_gestures: str = "recovery.gestures"
    topic_dlq: str = "recovery.dlq"
    topic_partitions: int = Field(default=6, ge=1)
    """Partitions of the topics `serve` creates when they are missing (existing topics are left as they are)."""
    lateness_s: float = Field(default=60.0, ge=0)
    """How far behind wall time the clock of a caught-up instance stays, for events that arrive late."""
    max_customers: int = Field(default=100_000, ge=1)
    batch_max_events: int = Field(default=2_000, ge=1)
    """Events per store transaction (and offset commit) at most."""
    poll_timeout_s: float = Field(default=0.2, gt=0)
    merge_wait_s: float = Field(default=2.0, ge=0)
    """Not used since each partition keeps a clock of its own (kept so that configurations that set it still
    load)."""
    barrier_wait_s: float = Field(default=30.0, ge=0)
    """How long an instance waits for another one's partitions to log their scope events (outages) up to the
    event time it is at, before it goes on without them (their outages then reach its customers late)."""
    retry_backoff_s: float = Field(default=1.0, gt=0)
    """Pause after a failure of the broker or the store, before trying again (it doubles while the failure lasts,
    up to 10 s); also the first retry's delay of a message the broker did not take."""
    max_future_skew_s: float = Field(default=3600.0, ge=0)
    """An event dated more than this ahead of wall time is refused (DLQ, reason `future_event`): one such event would
    move its partition's clock ahead, fire its deadlines early and prune what it still needs."""
    max_event_age_s: float = Field(default=10 * 365 * 86400.0, ge=0)
    """An event dated more than this before wall time is refused (DLQ, reason `too_old`); 0: no limit."""
    api_tokens: Annotated[tuple[ApiToken, ...], BeforeValidator(_json_list)] = ()
    """Bearer tokens of the HTTP API: a list of {name, role, token_sha256} (in RECOVERY_API_TOKENS, as JSON).
    Without any, every `/api/` call and the task page answer 401."""
    escalation_every_s: float = Field(default=5.0, gt=0)
    """How often the service looks for tasks not done by their due time, to escalate them."""
    gc_gen0_threshold: int = Field(default=DEFAULT_GC_GEN0_THRESHOLD, ge=0)
    """Python's garbage collector: allocations between two young-generation collections (Python's default is
    700; 0 keeps it). The start-up heap is frozen either way (see recovery/runtime.py)."""

    @classmethod
    def load(cls, path: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
        """Settings from `path` (YAML or TOML, optional) overridden by `environ` (default: os.environ)."""
        values: dict[str, Any] = {}
        if path is not None:
            values = _read_file(Path(path))
        env = os.environ if environ is None else environ
        for name in cls.model_fields:
            key = f"RECOVERY_{name.upper()}"
            if key in env:
                values[name] = env[key]
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = []
            for err in exc.errors(include_url=False):
                name = str(err["loc"][0]) if err["loc"] else "?"
                shown = "" if err["type"] == "missing" else f" has value {err.get('input')!r}"
                problems.append(f"setting '{name}' (RECOVERY_{name.upper()}){shown}: {err['msg']}")
            raise ConfigError("; ".join(problems)) from None

    def kafka_config(self) -> dict[str, Any]:
        """kafka-python client settings (bootstrap servers and security) shared by consumers, producers, admin."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap_servers.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism is not None:
            config["sasl_mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username is not None:
            config["sasl_plain_username"] = self.kafka_sasl_username
        if self.kafka_sasl_password is not None:
            config["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_cafile is not None:
            config["ssl_cafile"] = self.kafka_ssl_cafile
        return config


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"configuration file {path} is not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping of settings")
    return dict(data)

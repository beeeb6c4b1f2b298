"""An API over each store (memory, SQLite, PostgreSQL), with tokens for every role, a pinned clock and a
customer seeded through the engine (a cancellation: a save-desk task and a retention offer waiting for approval)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from recovery.api import ApiContext
from recovery.api.auth import hash_token
from recovery.config import ApiToken, Settings
from recovery.effects import Effect, Gesture, Task
from recovery.engine import Engine
from recovery.events import Event
from recovery.health import Health
from recovery.http import create_app
from recovery.lifecycle import Catalog
from recovery.metrics import Metrics
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store import MemoryStore, SqliteStore, Store
from recovery.store.postgres import PostgresStore
from recovery.times import format_time, parse_time
from tests.conftest import ROOT, RULES, process_all

T0 = parse_time("2026-11-02T09:00:00Z")
ROLES = {"ann": "frontline", "bob": "frontline", "olga": "ops", "ada": "admin"}


def token_of(name: str) -> str:
    return f"token-of-{name}"


def api_settings(**values: Any) -> Settings:
    tokens = tuple(ApiToken(name=n, role=r, token_sha256=hash_token(token_of(n))) for n, r in ROLES.items())  # type: ignore[arg-type]
    return Settings(api_tokens=tokens, **values)


def seed_events(customer: str = "C1", at: float = T0) -> list[Event]:
    profile = {"tier": "gold", "region": "north", "annual_value": 6000}
    steps = [("profile", "customer.updated", 0, profile), ("call", "service.call", 60, {"reason": "billing"}),
             ("cancel", "cancellation.requested", 120, {})]  # fmt: skip
    return [
        Event.from_dict(
            {
                "id": f"{customer}-{name}",
                "type": kind,
                "occurred_at": format_time(at + offset),
                "customer_id": customer,
                "data": data,
            }
        )
        for name, kind, offset, data in steps
    ]


@dataclass
class Api:
    client: TestClient
    ctx: ApiContext
    registry: CollectorRegistry
    kind: str
    now: list[float] = field(default_factory=lambda: [T0 + 3600])
    reloaded: list[list[CompiledPlaybook]] = field(default_factory=list)

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_of(name)}"}

    def get(self, path: str, who: str = "ann", **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers(who), **kwargs)

    def post(self, path: str, who: str = "ann", **kwargs: Any) -> Any:
        return self.client.post(path, headers=self.headers(who), **kwargs)

    def seed(self, playbooks: list[CompiledPlaybook], customer: str = "C1", at: float = T0) -> list[Effect]:
        store = self.ctx.open_store()
        effects = process_all(Engine(playbooks, store), seed_events(customer, at))
        for effect in effects:
            store.put_effect(effect)
        store.commit()
        store.close()
        return effects

    def put(self, *effects: Effect) -> None:
        store = self.ctx.open_store()
        for effect in effects:
            store.put_effect(effect)
        store.commit()
        store.close()

    def task_of(self, effects: list[Effect]) -> Task:
        return next(e for e in effects if isinstance(e, Task))

    def gesture_of(self, effects: list[Effect]) -> Gesture:
        return next(e for e in effects if isinstance(e, Gesture))


ApiFactory = Callable[..., Api]
ARTIFACTS = ROOT / ".cache" / "artifacts"
"""Where browser tests save their screenshots."""
INSTALL = ROOT / "deploy" / "browser" / "install.sh"
BROWSER_SETUP_TIMEOUT_S = 900


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A copy of the shipped playbooks that a test may change (for reloads)."""
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def api_factory(
    request: pytest.FixtureRequest, tmp_path: Path, rules_dir: Path, shipped_playbooks: list[CompiledPlaybook]
) -> Iterator[ApiFactory]:
    """APIs over one store kind; a memory store is shared by the requests, the others are opened per request."""
    clients: list[TestClient] = []
    url: str = request.getfixturevalue("postgres_database") if request.param == "postgres" else ""
    shared = MemoryStore()

    def opener() -> Store:
        if request.param == "memory":
            return shared
        if request.param == "sqlite":
            return SqliteStore(tmp_path / "api.db")
        return PostgresStore(url)

    def make(**settings: Any) -> Api:
        registry = CollectorRegistry()
        metrics = Metrics(registry, playbooks=[pb.id for pb in shipped_playbooks])
        api_settings_ = api_settings(rules_dir=rules_dir, **settings)
        catalog = Catalog(rules_dir, shipped_playbooks, metrics=metrics)
        now = [T0 + 3600]
        ctx = ApiContext(api_settings_, opener, catalog, metrics, clock=lambda: now[0])
        client = TestClient(create_app(api_settings_, registry, Health(), ctx))
        clients.append(client)
        api = Api(client, ctx, registry, request.param, now)
        catalog.on_reload = api.reloaded.append
        return api

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Paths of Debian's chromium and chromedriver (deploy/browser/install.sh installs them when missing)."""
    done = subprocess.run([str(INSTALL)], capture_output=True, text=True, timeout=BROWSER_SETUP_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{INSTALL} failed:\n{done.stdout}\n{done.stderr}")
    browser, driver = done.stdout.split()[-2:]
    return browser, driver


@pytest.fixture
def browser(chromium: tuple[str, str]) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromium[1]), options=options)
    yield driver
    driver.quit()


def text_once_shown(browser: object, by: str, selector: str, expected: str) -> str:
    """The element's text once it shows `expected`. A click navigates, so the old page's element may be gone between
    finding it and reading it: Chromium says so as a stale element or, mid-navigation, as "does not belong to the
    document" (an inspector error); both are read again, any other error is raised."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)

    def shown(driver: WebDriver) -> str | None:
        try:
            text = str(driver.find_element(by, selector).text)
        except (StaleElementReferenceException, NoSuchElementException):
            return None
        except WebDriverException as error:
            if "does not belong to the document" not in str(error.msg):
                raise
            return None
        return text if expected in text else None

    return str(WebDriverWait(browser, 30).until(shown))

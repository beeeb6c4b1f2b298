"""The task page: sign-in, the queue by urgency with overdue marked, a task's detail, claim and complete with an
outcome; plain forms (TestClient) and a real headless Chromium (Selenium), which saves screenshots under
.cache/artifacts/."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from recovery.http import HttpServer
from recovery.playbooks.compiler import CompiledPlaybook
from tests.api.conftest import Api, ApiFactory, token_of
from tests.conftest import ROOT, free_ports
from tests.store.test_desk import make_task

ARTIFACTS = ROOT / ".cache" / "artifacts"
INSTALL = ROOT / "deploy" / "browser" / "install.sh"
BROWSER_SETUP_TIMEOUT_S = 900


def sign_in(api: Api, who: str = "ann") -> None:
    response = api.client.get("/", params={"token": token_of(who)}, follow_redirects=False)
    assert response.status_code == 303
    assert "recovery_token" in response.headers["set-cookie"]
    assert "samesite=strict" in response.headers["set-cookie"].lower()


class TestForms:
    def test_without_a_token_the_page_asks_for_one(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        page = api.client.get("/")
        assert page.status_code == 200
        assert '<label for="token">Access token</label>' in page.text
        assert api.client.post("/login", data={"token": "wrong"}).status_code == 401
        assert api.client.get("/", params={"token": "wrong"}).status_code == 401

    def test_queue_by_urgency_with_overdue_marked(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        api.put(
            make_task("low", priority="P4", due_at="2026-11-02T09:30:00Z", title="Low and late"),
            make_task("urgent", priority="P1", due_at="2026-11-03T09:00:00Z", title="Urgent"),
            make_task("mid", priority="P2", due_at="2026-11-02T12:00:00Z", title="Middle"),
        )
        sign_in(api)
        page = api.client.get("/").text
        assert page.index("Urgent") < page.index("Middle") < page.index("Low and late")
        low_row = page[page.index('data-task-id="low"') - 40 : page.index("Low and late")]
        assert 'class="overdue"' in low_row and "Overdue" in page
        assert '<label for="queue">Queue</label>' in page

    def test_claim_and_complete_with_an_outcome(
        self, api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]
    ) -> None:
        api = api_factory()
        task = api.task_of(api.seed(shipped_playbooks))
        sign_in(api)
        detail = api.client.get(f"/tasks/{task.id}").text
        assert task.reason in detail and "Claim this task" in detail
        assert all(point in detail for point in task.talking_points)
        assert "retention-offer" in detail  # its gesture
        claimed = api.client.post(f"/tasks/{task.id}/claim")
        assert "Claimed: the task is yours." in claimed.text
        assert '<label for="outcome">Outcome</label>' in claimed.text
        refused = api.client.post(f"/tasks/{task.id}/complete", data={"outcome": "", "reason_code": "x", "note": ""})
        assert refused.status_code == 422 and "outcome" in refused.text
        done = api.client.post(
            f"/tasks/{task.id}/complete", data={"outcome": "saved", "reason_code": "offer-accepted", "note": "ok"}
        )
        assert done.status_code == 200 and "Completed: saved." in done.text
        assert 'id="task-outcome">saved<' in done.text
        assert api.client.get("/tasks/nope").status_code == 404


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


@pytest.mark.timeout(BROWSER_SETUP_TIMEOUT_S)
@pytest.mark.parametrize("api_factory", ["sqlite"], indirect=True)
def test_an_agent_claims_and_completes_in_chromium(
    api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook], browser: object
) -> None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import Select, WebDriverWait

    assert isinstance(browser, WebDriver)

    def text_of(by: str, selector: str, expected: str) -> str:
        """The element's text once it shows `expected`: a click navigates, and the old page's element goes stale."""
        wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))

        def shown(driver: WebDriver) -> str | None:
            text = str(driver.find_element(by, selector).text)
            return text if expected in text else None

        return str(wait.until(shown))

    api = api_factory()
    task = api.task_of(api.seed(shipped_playbooks))
    api.put(make_task("late-one", priority="P3", due_at="2026-11-02T09:30:00Z", title="An overdue callback"))
    port = free_ports(1)[0]
    server = HttpServer(api.client.app, port, host="127.0.0.1")  # type: ignore[arg-type]
    server.start()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        browser.find_element(By.ID, "token").send_keys(token_of("ann"))
        browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
        assert "Tasks to do" in text_of(By.TAG_NAME, "h1", "Tasks to do")
        rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr[data-task-id]")
        assert rows[0].get_attribute("data-task-id") == task.id  # P1/P2 before the P3
        late = browser.find_element(By.CSS_SELECTOR, "tr[data-task-id='late-one']")
        assert "overdue" in (late.get_attribute("class") or "") and "Overdue" in late.text
        browser.save_screenshot(str(ARTIFACTS / "task-page-queue.png"))
        browser.find_element(By.LINK_TEXT, task.title).click()
        WebDriverWait(browser, 30).until(lambda b: task.reason in b.page_source)
        browser.find_element(By.ID, "claim").click()
        assert "Claimed" in text_of(By.CSS_SELECTOR, "[role=status]", "Claimed")
        Select(browser.find_element(By.ID, "outcome")).select_by_value("saved")
        browser.find_element(By.ID, "reason_code").send_keys("offer-accepted")
        browser.find_element(By.ID, "note").send_keys("Accepted the retention offer.")
        browser.save_screenshot(str(ARTIFACTS / "task-page-complete.png"))
        browser.find_element(By.ID, "complete").click()
        assert text_of(By.ID, "task-outcome", "saved") == "saved"
        browser.save_screenshot(str(ARTIFACTS / "task-page-done.png"))
    finally:
        server.stop()
    record = api.ctx.open_store().get_task(task.id)
    assert record is not None and (record.status, record.outcome, record.claimed_by) == ("done", "saved", "ann")
    print(f"screenshots in {ARTIFACTS}")
    assert Path(ARTIFACTS / "task-page-done.png").stat().st_size > 0

"""The task page: sign-in, the queue of cases by urgency with overdue marked, a task's detail, claim and complete
with an outcome; plain forms (TestClient) and a real headless Chromium (Selenium), which saves screenshots under
.cache/artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from recovery.http import HttpServer
from recovery.playbooks.compiler import CompiledPlaybook
from tests.api.conftest import ARTIFACTS, BROWSER_SETUP_TIMEOUT_S, Api, ApiFactory, text_once_shown, token_of
from tests.conftest import free_ports
from tests.store.test_desk import make_task


def sign_in(api: Api, who: str = "ann", client: TestClient | None = None) -> None:
    """Sign in through the sign-in form."""
    response = (client or api.client).post("/login", data={"token": token_of(who)}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "recovery_token" in cookie and "samesite=strict" in cookie and "httponly" in cookie


def csrf_of(page: str) -> str:
    """The CSRF token the page's forms carry (one per session: every form has the same)."""
    found = set(re.findall(r'<input type="hidden" name="csrf" value="([0-9a-f]+)">', page))
    assert len(found) == 1, found
    return found.pop()


class TestForms:
    def test_without_a_token_the_page_asks_for_one(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        page = api.client.get("/")
        assert page.status_code == 200
        assert '<label for="token">Access token</label>' in page.text
        assert api.client.post("/login", data={"token": "wrong"}).status_code == 401

    def test_queue_of_cases_by_urgency_with_overdue_marked(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        api.put(
            make_task("low", priority="P4", due_at="2026-11-02T09:30:00Z", title="Low and late"),
            make_task("urgent", priority="P1", due_at="2026-11-03T09:00:00Z", title="Urgent"),
            make_task("mid", priority="P2", due_at="2026-11-02T12:00:00Z", title="Middle"),
        )
        sign_in(api)
        page = api.client.get("/").text
        assert page.index("Urgent") < page.index("Middle") < page.index("Low and late")
        low_row = page[page.index('data-case-id="low"') - 40 : page.index("Low and late")]  # tasks without a case
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
        csrf = csrf_of(detail)
        claimed = api.client.post(f"/tasks/{task.id}/claim", data={"csrf": csrf})
        assert "Claimed: the task is yours." in claimed.text
        assert '<label for="outcome">Outcome</label>' in claimed.text
        form = {"outcome": "", "reason_code": "x", "note": "", "csrf": csrf}
        refused = api.client.post(f"/tasks/{task.id}/complete", data=form)
        assert refused.status_code == 422 and "outcome" in refused.text
        done = api.client.post(
            f"/tasks/{task.id}/complete",
            data={"outcome": "saved", "reason_code": "offer-accepted", "note": "ok", "csrf": csrf},
        )
        assert done.status_code == 200 and "Completed: saved." in done.text
        assert 'id="task-outcome">saved<' in done.text
        assert api.client.get("/tasks/nope").status_code == 404

    def test_a_form_posted_without_its_csrf_token_is_refused(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        api.put(make_task("t1"))
        sign_in(api)
        csrf = csrf_of(api.client.get("/tasks/t1").text)
        with TestClient(api.client.app) as other:
            sign_in(api, "bob", other)
            bobs = csrf_of(other.get("/").text)
        assert bobs != csrf  # a token is bound to its session
        for forged in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": bobs}, {"csrf": csrf[:-1]}):
            refused = api.client.post("/tasks/t1/claim", data=forged)
            assert refused.status_code == 403, forged
            assert "no valid CSRF token" in refused.text
            assert csrf_of(refused.text) == csrf  # the page again, with forms that carry it: try again
        assert api.client.get("/api/tasks/t1", headers=api.headers("ann")).json()["task"]["status"] == "open"
        assert "Claimed" in api.client.post("/tasks/t1/claim", data={"csrf": csrf}).text
        form = {"outcome": "saved", "reason_code": "x", "note": ""}
        assert api.client.post("/tasks/t1/complete", data=form).status_code == 403
        assert api.client.post("/tasks/t1/release", data={"csrf": bobs}).status_code == 403
        assert api.client.post("/logout", follow_redirects=False).status_code == 403
        assert "Sign out" in api.client.get("/").text  # still signed in
        signed_out = api.client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
        assert signed_out.status_code == 303 and 'recovery_token=""' in signed_out.headers["set-cookie"]

    def test_the_token_link_is_a_demo_convenience_off_by_default(self, api_factory: ApiFactory) -> None:
        link = {"token": token_of("ann")}
        refused = api_factory().client.get("/", params=link, follow_redirects=False)
        assert refused.status_code == 403
        assert "set-cookie" not in refused.headers
        assert "http_token_in_url" in refused.text and '<label for="token">Access token</label>' in refused.text
        demo = api_factory(http_token_in_url=True).client
        signed_in = demo.get("/", params=link, follow_redirects=False)
        assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/")
        assert "recovery_token" in signed_in.headers["set-cookie"]
        assert demo.get("/", params={"token": "wrong"}).status_code == 401

    def test_the_cookie_is_secure_when_served_over_tls(self, api_factory: ApiFactory) -> None:
        cookie = api_factory().client.post("/login", data={"token": token_of("ann")}, follow_redirects=False)
        assert "secure" not in cookie.headers["set-cookie"].lower()
        client = api_factory(http_cookie_secure=True).client
        cookie = client.post("/login", data={"token": token_of("ann")}, follow_redirects=False)
        assert "; secure" in cookie.headers["set-cookie"].lower()
        signed_out = client.post("/logout", follow_redirects=False)  # no cookie over plain HTTP: not signed in
        assert signed_out.status_code == 401


@pytest.mark.timeout(BROWSER_SETUP_TIMEOUT_S)
@pytest.mark.parametrize("api_factory", ["sqlite"], indirect=True)
def test_an_agent_claims_and_completes_in_chromium(
    api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook], browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import Select, WebDriverWait

    assert isinstance(browser, WebDriver)

    def text_of(by: str, selector: str, expected: str) -> str:
        return text_once_shown(browser, by, selector, expected)

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
        assert "Cases to work" in text_of(By.TAG_NAME, "h1", "Cases to work")
        rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr[data-case-id]")
        assert rows[0].get_attribute("data-case-id") == (task.case_id or task.id)  # P1/P2 before the P3
        late = browser.find_element(By.CSS_SELECTOR, "tr[data-case-id='late-one']")
        assert "overdue" in (late.get_attribute("class") or "") and "Overdue" in late.text
        browser.save_screenshot(str(ARTIFACTS / "task-page-queue.png"))
        rows[0].find_element(By.CSS_SELECTOR, "a").click()  # its case
        browser.find_element(By.CSS_SELECTOR, f"tr[data-task-id='{task.id}'] a").click()  # the task in it
        WebDriverWait(browser, 30).until(lambda b: task.reason in b.page_source)
        assert browser.find_element(By.CSS_SELECTOR, "form[action$='/claim'] input[name=csrf]").get_attribute("value")
        browser.find_element(By.ID, "claim").click()
        assert "Claimed" in text_of(By.CSS_SELECTOR, "[role=status]", "Claimed")
        Select(browser.find_element(By.ID, "outcome")).select_by_value("saved")
        browser.find_element(By.ID, "reason_code").send_keys("offer-accepted")
        browser.find_element(By.ID, "note").send_keys("Accepted the retention offer.")
        browser.save_screenshot(str(ARTIFACTS / "task-page-complete.png"))
        browser.find_element(By.ID, "complete").click()
        assert text_of(By.ID, "task-outcome", "saved") == "saved"
        browser.save_screenshot(str(ARTIFACTS / "task-page-done.png"))
        # A form the page did not make (no CSRF token), posted from the page with the agent's cookie: refused.
        browser.execute_script(
            "const form = document.createElement('form');"
            "form.method = 'post'; form.action = '/tasks/late-one/claim';"
            "document.body.appendChild(form); form.submit();"
        )
        assert "no valid CSRF token" in text_of(By.CSS_SELECTOR, "[role=alert]", "CSRF")
        browser.save_screenshot(str(ARTIFACTS / "task-page-forged.png"))
    finally:
        server.stop()
    store = api.ctx.open_store()
    record, late = store.get_task(task.id), store.get_task("late-one")
    store.close()
    assert record is not None and (record.status, record.outcome, record.claimed_by) == ("done", "saved", "ann")
    assert late is not None and late.status == "open"
    print(f"screenshots in {ARTIFACTS}")
    assert Path(ARTIFACTS / "task-page-done.png").stat().st_size > 0

"""The case page and the power players page: a case's reasons, evidence, talking points, tasks side by side,
gestures, muted and snoozed playbooks; claim, complete (one outcome for every task held) and snooze through the forms,
with their CSRF token; a task that joined a held case shown new, once. Plain forms (TestClient) and a real headless
Chromium (Selenium), which saves screenshots under .cache/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from recovery.effects import Task
from recovery.http import HttpServer
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store.records import Snooze
from tests.api.conftest import ARTIFACTS, BROWSER_SETUP_TIMEOUT_S, T0, Api, ApiFactory, text_once_shown, token_of
from tests.api.test_page import csrf_of, sign_in
from tests.conftest import free_ports
from tests.store.test_desk import make_task

COMPLETE = {"outcome": "saved", "reason_code": "offer-accepted", "note": "ok"}


def a_case(api: Api, playbooks: list[CompiledPlaybook]) -> tuple[str, Task]:
    """C1 through the engine (a save-desk task, a retention offer), a second task in its case, a snooze and a muted
    task: the case's id and its first task."""
    task = api.task_of(api.seed(playbooks))
    case_id = task.case_id or task.id
    second = make_task("second", case_id=case_id, playbook="billing-followup", queue="billing", priority="P3",
                       title="Check the bill", reason="Two billing calls this week", evidence=["C1-call"],
                       talking_points=["walk through the bill"])  # fmt: skip
    api.put(second)
    store = api.ctx.open_store()
    store.put_snooze("C1", Snooze("outage-apology", T0 + 7 * 86400, "apologised by phone", "olga"))
    muted = make_task("muted-1", playbook="outage-apology", title="Apologise for the outage")
    store.put_muted(muted, "snooze", "outage-apology snoozed by olga", T0 + 60)
    store.commit()
    store.close()
    return case_id, task


class TestForms:
    def test_the_case_page_has_everything_side_by_side(
        self, api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]
    ) -> None:
        api = api_factory()
        case_id, task = a_case(api, shipped_playbooks)
        sign_in(api)
        queue = api.client.get("/").text
        assert f'data-case-id="{case_id}"' in queue and "2 tasks for C1" in queue and "6,000 a year" in queue
        page = api.client.get(f"/cases/{case_id}").text
        assert task.reason in page and "Two billing calls this week" in page  # every reason
        assert all(point in page for point in [*task.talking_points, "walk through the bill"])
        assert f'data-task-id="{task.id}"' in page and 'data-task-id="second"' in page
        assert "billing-followup v1" in page and "save-desk" in page and "billing" in page
        assert "retention-offer" in page  # the gesture
        assert "outage-apology snoozed until" in page and "apologised by phone" in page
        assert "would have raised “Apologise for the outage”: muted by snooze" in page
        assert "Claim this case" in page and "Snooze a playbook" not in page  # frontline: no snooze form
        assert api.client.get("/cases/nope").status_code == 404

    def test_claim_and_complete_through_the_forms(
        self, api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]
    ) -> None:
        api = api_factory()
        case_id, _ = a_case(api, shipped_playbooks)
        sign_in(api)
        csrf = csrf_of(api.client.get(f"/cases/{case_id}").text)
        claimed = api.client.post(f"/cases/{case_id}/claim", data={"csrf": csrf})
        assert "Claimed: the case is yours." in claimed.text and 'id="complete"' in claimed.text
        api.put(make_task("joined", case_id=case_id, title="Cancellation requested again", priority="P1"))
        done = api.client.post(f"/cases/{case_id}/complete", data={**COMPLETE, "csrf": csrf})
        assert "Completed: saved. 1 task(s) still open." in done.text  # the joined task was not seen yet
        assert "New since you last opened this case: 1 task" in done.text
        assert "New since you last opened" not in api.client.get(f"/cases/{case_id}").text  # seen, once
        refused = api.client.post(f"/cases/{case_id}/complete", data={"outcome": "", "reason_code": "x", "csrf": csrf})
        assert refused.status_code == 422 and "outcome" in refused.text
        closed = api.client.post(f"/cases/{case_id}/complete", data={**COMPLETE, "csrf": csrf})
        assert 'id="case-closed"' in closed.text and "Completed: saved." in closed.text
        store = api.ctx.open_store()
        case = store.get_case(case_id)
        store.close()
        assert case is not None and {(t.status, t.outcome, t.claimed_by) for t in case.tasks} == {
            ("done", "saved", "ann")
        }

    def test_forms_without_their_csrf_token_are_refused(
        self, api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]
    ) -> None:
        api = api_factory()
        case_id, _ = a_case(api, shipped_playbooks)
        sign_in(api, "olga")
        csrf = csrf_of(api.client.get(f"/cases/{case_id}").text)
        for action, form in (("claim", {}), ("complete", COMPLETE),
                             ("snooze", {"playbook": "save-desk", "days": "7", "reason": "r"})):  # fmt: skip
            refused = api.client.post(f"/cases/{case_id}/{action}", data=form)
            assert refused.status_code == 403 and "no valid CSRF token" in refused.text
            assert csrf_of(refused.text) == csrf

    def test_ops_snooze_a_playbook_from_the_case(
        self, api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]
    ) -> None:
        api = api_factory()
        case_id, _ = a_case(api, shipped_playbooks)
        playbook = sorted(pb.id for pb in shipped_playbooks)[0]
        sign_in(api, "olga")
        page = api.client.get(f"/cases/{case_id}").text
        assert "Snooze a playbook for C1" in page
        csrf = csrf_of(page)
        form = {"playbook": playbook, "days": "3", "reason": "customer asked", "csrf": csrf}
        done = api.client.post(f"/cases/{case_id}/snooze", data=form)
        assert f"Snoozed {playbook} for C1 until 2026-11-05T10:00:00Z" in done.text
        for change, message in (({"days": "365"}, "days: choose one of 1, 3, 7, 14, 30"),
                                ({"playbook": "nope"}, "playbook: no running playbook"),
                                ({"reason": " "}, "reason:")):  # fmt: skip
            refused = api.client.post(f"/cases/{case_id}/snooze", data={**form, **change})
            assert refused.status_code == 422 and message in refused.text
        with api.client as client:
            sign_in(api, "ann", client)
            refused = client.post(f"/cases/{case_id}/snooze", data={**form, "csrf": csrf_of(client.get("/").text)})
            assert refused.status_code == 403 and "needs ops" in refused.text

    def test_the_queue_says_when_it_is_cut(self, api_factory: ApiFactory, monkeypatch: pytest.MonkeyPatch) -> None:
        api = api_factory()
        api.put(*(make_task(f"t{n}", case_id=f"case-{n}", customer_id=f"C{n}") for n in range(3)))
        monkeypatch.setattr("recovery.api.page.QUEUE_PAGE", 2)
        sign_in(api)
        page = api.client.get("/").text
        assert "Cases 1 to 2 of 3" in page and 'id="next-page" href="/?offset=2"' in page
        rest = api.client.get("/", params={"offset": 2}).text
        assert "Cases 3 to 3 of 3" in rest and 'data-case-id="case-2"' in rest and "next-page" not in rest

    def test_the_power_players_page(self, api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]) -> None:
        api = api_factory()
        case_id, _ = a_case(api, shipped_playbooks)
        sign_in(api)
        page = api.client.get("/at-risk").text
        assert 'data-customer-id="C1"' in page and "6,000" in page and "open case: P1, open" in page
        assert f'href="/cases/{case_id}"' in page


@pytest.mark.timeout(BROWSER_SETUP_TIMEOUT_S)
@pytest.mark.parametrize("api_factory", ["sqlite"], indirect=True)
def test_an_agent_claims_and_completes_a_case_in_chromium(
    api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook], browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import Select

    assert isinstance(browser, WebDriver)

    def text_of(by: str, selector: str, expected: str) -> str:
        return text_once_shown(browser, by, selector, expected)

    def sign_in_as(name: str) -> None:
        browser.get(f"http://127.0.0.1:{port}/")
        browser.find_element(By.ID, "token").send_keys(token_of(name))
        browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
        text_of(By.TAG_NAME, "h1", "Cases to work")

    api = api_factory()
    case_id, task = a_case(api, shipped_playbooks)
    api.put(make_task("other", case_id="case-other", customer_id="C2", priority="P4", title="A courtesy call"))
    port = free_ports(1)[0]
    server = HttpServer(api.client.app, port, host="127.0.0.1")  # type: ignore[arg-type]
    server.start()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        sign_in_as("ann")
        rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr[data-case-id]")
        assert [r.get_attribute("data-case-id") for r in rows] == [case_id, "case-other"]
        assert "6,000 a year" in rows[0].text and "Check the bill" in rows[0].text and task.title in rows[0].text
        browser.save_screenshot(str(ARTIFACTS / "case-queue.png"))
        browser.find_element(By.LINK_TEXT, "Power players at risk").click()
        assert "Power players at risk" in text_of(By.TAG_NAME, "h1", "Power players")
        risky = browser.find_elements(By.CSS_SELECTOR, "tbody tr[data-customer-id]")
        assert [r.get_attribute("data-customer-id") for r in risky] == ["C1", "C2"]  # the most valuable first
        assert "open case: P1, open" in risky[0].text and "6,000" in risky[0].text
        browser.save_screenshot(str(ARTIFACTS / "at-risk.png"))
        risky[0].find_element(By.CSS_SELECTOR, "td:last-child a").click()  # its case
        text_of(By.ID, "why", "Why")
        body = browser.find_element(By.TAG_NAME, "body").text
        assert task.reason in body and "Two billing calls this week" in body and "walk through the bill" in body
        assert "muted by snooze" in body and "outage-apology snoozed until" in body
        browser.save_screenshot(str(ARTIFACTS / "case-page.png"))
        browser.find_element(By.ID, "claim").click()
        assert "Claimed" in text_of(By.CSS_SELECTOR, "[role=status]", "Claimed")
        # A task joins the case while ann holds it, her page open: her completion is for what she has seen.
        api.put(make_task("joined", case_id=case_id, title="Cancellation requested again", priority="P1"))
        Select(browser.find_element(By.ID, "outcome")).select_by_value("saved")
        browser.find_element(By.ID, "reason_code").send_keys("offer-accepted")
        browser.find_element(By.ID, "note").send_keys("Accepted the retention offer.")
        browser.find_element(By.ID, "complete").click()
        assert "1 task(s) still open" in text_of(By.CSS_SELECTOR, "[role=status]", "Completed")
        assert "New since you last opened this case" in text_of(By.ID, "new-tasks", "New since")
        joined = browser.find_element(By.CSS_SELECTOR, "tr[data-task-id='joined']").text
        assert "new" in joined and "claimed by ann" in joined
        browser.save_screenshot(str(ARTIFACTS / "case-page-new-task.png"))
        Select(browser.find_element(By.ID, "outcome")).select_by_value("saved")
        browser.find_element(By.ID, "reason_code").send_keys("offer-accepted")
        browser.find_element(By.ID, "complete").click()
        assert "every task of it is done" in text_of(By.ID, "case-closed", "Closed")
        assert browser.find_element(By.ID, "case-status").text == "closed"
        browser.save_screenshot(str(ARTIFACTS / "case-page-done.png"))
        browser.find_element(By.CSS_SELECTOR, "header form button").click()  # sign out
        text_of(By.TAG_NAME, "h1", "Sign in")
        sign_in_as("olga")
        browser.get(f"http://127.0.0.1:{port}/cases/case-other")
        Select(browser.find_element(By.ID, "snooze-playbook")).select_by_index(0)
        browser.find_element(By.ID, "snooze-reason").send_keys("On holiday, asked not to be called")
        browser.find_element(By.ID, "snooze-submit").click()
        assert "in force once the service reads it" in text_of(By.CSS_SELECTOR, "[role=status]", "Snoozed")
        browser.save_screenshot(str(ARTIFACTS / "case-page-snoozed.png"))
    finally:
        server.stop()
    store = api.ctx.open_store()
    case = store.get_case(case_id)
    trail = [(a.actor, a.action) for a in store.audit(customer_id="C2")]
    store.close()
    assert case is not None and {(t.status, t.outcome, t.claimed_by) for t in case.tasks} == {("done", "saved", "ann")}
    assert trail == [("olga", "snooze")]
    print(f"screenshots in {ARTIFACTS}")
    assert Path(ARTIFACTS / "case-page-done.png").stat().st_size > 0

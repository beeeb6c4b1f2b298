"""The report for ops and admin: `/api/reports` (JSON, the same as `recovery report --format json`) and the page at
`/reports` (frontline refused with 403), in plain requests and in a real headless Chromium (screenshots and a PDF
under .cache/artifacts/)."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest

from recovery.engine import Engine
from recovery.http import HttpServer
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.report import build_report
from recovery.times import parse_time
from tests.api.conftest import ARTIFACTS, BROWSER_SETUP_TIMEOUT_S, Api, ApiFactory, token_of
from tests.api.test_page import sign_in
from tests.conftest import free_ports
from tests.report.conftest import ev, profile
from tests.report.test_customers import STREAM

PERIOD = {"from": "2026-11-02T00:00:00Z", "to": "2026-11-16T00:00:00Z"}


def seeded(api: Api, playbooks: list[CompiledPlaybook]) -> None:
    """The customer-metrics stream, and a cancellation before A's loss (a save-desk task and an offer)."""
    store = api.ctx.open_store()
    engine = Engine(playbooks, store)
    extra = [profile("X", -3, annual_value=50), ev("cancellation.requested", "A", 1)]
    for event in sorted(STREAM + extra, key=lambda e: e.ts):
        engine.process(event)
    for n in range(12):  # complaints rising in the second week
        engine.process(ev("complaint.opened", "X", 7.5 if n > 2 else 1, {"complaint_id": f"K{n}", "category": "bill"}))
    store.commit()
    store.close()


def test_the_json_for_ops_and_admin(api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]) -> None:
    api = api_factory()
    seeded(api, shipped_playbooks)
    answer = api.get("/api/reports", who="olga", params=PERIOD)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    store = api.ctx.open_store()
    try:
        same = build_report(store, parse_time(PERIOD["from"]), parse_time(PERIOD["to"]), "week")
    finally:
        store.close()
    assert report == same
    assert (report["customers"]["lost"]["count"], report["customers"]["lost"]["value"]) == (2, 1650)
    assert report["lost"][0]["customer_id"] == "A" and report["lost"][0]["recovery_attempted"] is True
    assert report["playbooks"]["cancellation-save"]["tasks"] == 1
    by_month = api.get("/api/reports", who="ada", params={**PERIOD, "by": "month"}).json()
    assert [p["label"] for p in by_month["periods"]] == ["2026-11"]


def test_who_may_read_it_and_bad_parameters(api_factory: ApiFactory) -> None:
    api = api_factory()
    assert api.get("/api/reports").status_code == 403  # ann is frontline
    assert api.client.get("/api/reports").status_code == 401
    bad = api.get("/api/reports", who="olga", params={"from": "yesterday"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("from: ")
    empty = api.get("/api/reports", who="olga", params={"from": PERIOD["to"], "to": PERIOD["from"]})
    assert empty.status_code == 422 and "is not before" in empty.json()["detail"]
    assert api.get("/api/reports", who="olga", params={"by": "day"}).status_code == 422
    default = api.get("/api/reports", who="olga").json()["period"]  # the last four weeks before now
    assert parse_time(default["to"]) - parse_time(default["from"]) == 28 * 86400
    assert parse_time(default["to"]) == api.now[0]


def test_the_page_for_ops_and_admin(api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]) -> None:
    api = api_factory()
    seeded(api, shipped_playbooks)
    assert "Access token" in api.client.get("/reports").text  # not signed in: the sign-in page
    sign_in(api, "ann")
    refused = api.client.get("/reports")
    assert refused.status_code == 403 and "the reports are for ops and admin" in refused.text
    assert 'href="/reports"' not in api.client.get("/").text
    sign_in(api, "olga")
    assert 'href="/reports"' in api.client.get("/").text
    page = api.client.get("/reports", params=PERIOD)
    assert page.status_code == 200
    assert "Customer-loss review and metrics" in page.text and page.text.count("<svg ") >= 5
    assert 'name="from" value="2026-11-02T00:00:00Z"' in page.text
    assert api.client.get("/reports", params={"to": "soon"}).status_code == 422


def test_a_sign_in_link_goes_on_to_the_same_report(api_factory: ApiFactory) -> None:
    """`make demo` links the report of its simulated period, signed in (a demo's convenience, off by default)."""
    link = {**PERIOD, "token": token_of("olga")}
    refused = api_factory().client.get("/reports", params=link, follow_redirects=False)
    assert refused.status_code == 403 and "set-cookie" not in refused.headers and "http_token_in_url" in refused.text
    demo = api_factory(http_token_in_url=True).client
    assert demo.get("/reports", params={**PERIOD, "token": "wrong"}).status_code == 401
    signed_in = demo.get("/reports", params=link, follow_redirects=False)
    assert signed_in.status_code == 303 and "recovery_token" in signed_in.headers["set-cookie"]
    assert signed_in.headers["location"] == f"/reports?{urlencode(PERIOD)}"  # the token is not kept in the URL
    page = demo.get(signed_in.headers["location"])
    assert page.status_code == 200 and 'name="from" value="2026-11-02T00:00:00Z"' in page.text


@pytest.mark.timeout(BROWSER_SETUP_TIMEOUT_S)
@pytest.mark.parametrize("api_factory", ["sqlite"], indirect=True)
def test_the_page_in_chromium(
    api_factory: ApiFactory,
    shipped_playbooks: list[CompiledPlaybook],
    browser: object,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import Select, WebDriverWait

    assert isinstance(browser, WebDriver)
    api = api_factory()
    seeded(api, shipped_playbooks)
    port = free_ports(1)[0]
    server = HttpServer(api.client.app, port, host="127.0.0.1")  # type: ignore[arg-type]
    server.start()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        browser.find_element(By.ID, "token").send_keys(token_of("olga"))
        browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
        WebDriverWait(browser, 30).until(lambda b: "Cases to work" in b.page_source)
        browser.find_element(By.LINK_TEXT, "Reports").click()
        WebDriverWait(browser, 30).until(lambda b: "Customer-loss review" in b.page_source)
        browser.find_element(By.ID, "from").clear()
        browser.find_element(By.ID, "from").send_keys(PERIOD["from"])
        browser.find_element(By.ID, "to").clear()
        browser.find_element(By.ID, "to").send_keys(PERIOD["to"])
        Select(browser.find_element(By.ID, "by")).select_by_value("week")
        browser.find_element(By.CSS_SELECTOR, "form.controls button").click()
        WebDriverWait(browser, 30).until(lambda b: "2026-W46" in b.page_source)
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1366, min(int(height), 8000))
        browser.save_screenshot(str(ARTIFACTS / "report-page.png"))
        assert "Loss review" in browser.find_element(By.ID, "loss-review").text
        lost = browser.find_elements(By.CSS_SELECTOR, "#lost tbody tr[data-customer-id]")
        assert [row.get_attribute("data-customer-id") for row in lost] == ["A", "B"]
        assert "Playbooks: cancellation-save" in lost[0].text and "No recovery attempted." in lost[1].text
        assert "Rising: bill." in browser.find_element(By.ID, "rising-complaints").text
        charts = browser.find_elements(By.CSS_SELECTOR, "figure svg[role=img]")
        assert len(charts) >= 5 and all(chart.size["width"] > 200 for chart in charts)
        pdf = browser.execute_cdp_cmd("Page.printToPDF", {"printBackground": False})  # printable: print CSS
        (ARTIFACTS / "report-page.pdf").write_bytes(base64.b64decode(pdf["data"]))
    finally:
        server.stop()
    assert (ARTIFACTS / "report-page.pdf").stat().st_size > 10_000

"""The run browser in a real browser: what a person sees and does at ``spanflow serve``'s ``/``.

Headless Chromium (Debian's) drives the page against a real ``spanflow serve`` process
(`tests.ui.conftest`). The API only sets the scene (runs in the store); everything asserted is
read off the page: the runs list and its statuses, a live run's timeline growing, a suspended
run approved through the form generated from its resume schema, untrusted text shown as text,
the way to the run's trace in Jaeger, and an agent's answer streaming in.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import TYPE_CHECKING

import pytest

if os.environ.get("CI", "").lower() != "true":  # in CI, a missing Playwright is an error
    pytest.importorskip("playwright", reason="the browser tests need Playwright: make setup")

from playwright.sync_api import expect

from examples.order_fulfilment import SIMULATED_LATENCY, sample_order
from tests.ui.app import SLOW_STEP_SECONDS, SLOW_STEPS, UNTRUSTED_TEXT
from tests.ui.support import JAEGER_UI, Api

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from tests.ui.conftest import Tab


def approval_body(amount: int = 1500) -> dict[str, object]:
    return {"inputData": {"order": "A-7", "amount": amount}}


def test_the_runs_list_shows_stored_runs_with_their_status(tab: Tab, page: Page, api: Api) -> None:
    approved, waiting = "list-approved", "list-waiting"
    api.start_async("approval", approved, {**approval_body(), "resourceId": "shop-1"})
    api.resume_async("approval", approved, {"resumeData": {"approved": True, "approver": "Ada"}})
    api.start_async("approval", waiting, approval_body())

    tab.open("#/workflows/approval")

    rows = page.locator("#runs-table tr.run-row")
    expect(page.locator(f'tr.run-row[data-run-id="{approved}"] td.status')).to_have_text("success")
    expect(page.locator(f'tr.run-row[data-run-id="{waiting}"] td.status')).to_have_text("suspended")
    # Newest first.
    ids = [rows.nth(i).get_attribute("data-run-id") for i in range(rows.count())]
    assert ids.index(waiting) < ids.index(approved)

    page.select_option("#status-filter", "suspended")
    expect(page.locator(f'tr.run-row[data-run-id="{approved}"]')).to_have_count(0)
    expect(page.locator(f'tr.run-row[data-run-id="{waiting}"] td.status')).to_have_text("suspended")

    page.select_option("#status-filter", "")  # any status, but only the shop's runs
    page.fill("#resource-filter", "shop-1")
    expect(page.locator(f'tr.run-row[data-run-id="{waiting}"]')).to_have_count(0)
    expect(page.locator(f'tr.run-row[data-run-id="{approved}"] td.status')).to_have_text("success")


def test_a_live_run_s_timeline_grows_as_its_steps_finish(
    tab: Tab, page: Page, api: Api, run_id: str
) -> None:
    api.start("slow", run_id, {"inputData": {"batch": "b-1"}})
    tab.open(f"#/workflows/slow/runs/{run_id}")
    page.evaluate("window.__sameDocument = true")

    bars = page.locator("#timeline .bar")
    seen: list[int] = []
    deadline = time.monotonic() + len(SLOW_STEPS) * SLOW_STEP_SECONDS + 5
    while time.monotonic() < deadline:
        seen.append(bars.count())
        if page.locator("#run-status").text_content() == "success":
            break
        page.wait_for_timeout(50)

    expect(page.locator("#run-status")).to_have_text("success")
    counts = sorted(set(seen))
    assert seen == sorted(seen), f"the timeline lost bars on the way: {seen}"
    assert len(counts) >= 3, f"the timeline did not grow while the run went on: {counts}"
    for step_id in SLOW_STEPS:
        expect(page.locator(f'#timeline .bar[data-step-id="{step_id}"]')).to_have_class(
            re.compile(r"\bstatus-success\b")
        )
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"


def test_a_suspended_run_is_approved_through_the_generated_form(
    tab: Tab, page: Page, api: Api, run_id: str
) -> None:
    suspended = api.start_async("approval", run_id, approval_body(1500))
    assert suspended["status"] == "suspended"

    tab.open(f"#/workflows/approval/runs/{run_id}")

    expect(page.locator("#run-status")).to_have_text("suspended")
    expect(page.locator("#suspend-payload")).to_contain_text("needs a manager")
    expect(page.locator("#suspend-payload")).to_contain_text("1500")
    form = page.locator("#resume-form")
    form.locator('[name="approved"]').check()
    form.locator('[name="approver"]').fill("Grace Hopper")
    page.click("#resume-submit")

    expect(page.locator("#run-status")).to_have_text("success")
    expect(page.locator('#timeline .bar[data-step-id="record"]')).to_have_class(
        re.compile(r"\bstatus-success\b")
    )
    result = api.run("approval", run_id)["result"]
    assert result == {"order": "A-7", "approved": True, "by": "Grace Hopper", "recorded": True}


def test_markup_in_a_run_is_shown_as_text_and_never_runs(
    tab: Tab, page: Page, api: Api, run_id: str
) -> None:
    api.start_async("untrusted", run_id, {"inputData": {"note": UNTRUSTED_TEXT}})

    tab.open(f"#/workflows/untrusted/runs/{run_id}")

    expect(page.locator("#run-status")).to_have_text("success")
    output = page.locator('.step-detail[data-step-id="echo"]')
    expect(output).to_contain_text("<script>alert(1)</script>")
    expect(output).to_contain_text("<img src=x onerror=alert(2)>")
    expect(page.locator("#run-input")).to_contain_text("<script>alert(1)</script>")
    page.wait_for_timeout(300)  # time for an image's onerror, had one been made
    injected = page.evaluate(
        """() => ({
            scripts: document.querySelectorAll(".step-detail script, #run-input script").length,
            images: document.querySelectorAll(".step-detail img, #run-input img").length,
            handlers: document.querySelectorAll("[onerror]").length,
        })"""
    )
    assert injected == {"scripts": 0, "images": 0, "handlers": 0}
    assert tab.alerts() == []
    assert tab.dialogs == []


def test_the_jaeger_link_opens_the_run_s_trace(tab: Tab, page: Page, api: Api, run_id: str) -> None:
    trace_id = uuid.uuid4().hex
    caller = f"00-{trace_id}-{'1' * 16}-01"
    api.start_async("untrusted", run_id, {"inputData": {"note": "hi"}}, traceparent=caller)
    span_id = api.run("untrusted", run_id)["spanId"]

    tab.open(f"#/workflows/untrusted/runs/{run_id}")

    expect(page.locator("#jaeger-link")).to_have_attribute("href", f"{JAEGER_UI}/trace/{trace_id}")
    expect(page.locator("#copy-traceparent")).to_have_attribute(
        "data-traceparent", f"00-{trace_id}-{span_id}-01"
    )


def test_an_agent_s_answer_streams_into_the_chat(tab: Tab, page: Page) -> None:
    tab.open("#/agents/weather")
    expect(page.locator("#agent-send")).to_be_visible()
    page.evaluate(
        """() => {
            window.__outputChanges = 0;
            new MutationObserver((records) => { window.__outputChanges += records.length; })
                .observe(document.querySelector("#agent-output"),
                         {childList: true, characterData: true, subtree: true});
        }"""
    )

    page.fill("#agent-message", "What is the weather in Paris?")
    page.click("#agent-send")

    output = page.locator("#agent-output")
    expect(output).to_contain_text("It is 21 degrees in Paris.")
    expect(output.locator(".tool-call")).to_contain_text("get_weather")
    expect(output.locator(".tool-result")).to_contain_text("21")
    changes = page.evaluate("window.__outputChanges")
    assert changes > 3, f"the answer arrived in {changes} change(s), not as a stream"


def test_a_foreach_s_iterations_are_grouped_under_their_step(
    tab: Tab, page: Page, api: Api, run_id: str
) -> None:
    order = {**sample_order(), "shipping": "standard"}
    order["items"] = order["items"][:2]  # under the approval limit: no manager needed
    body = {"inputData": order, "requestContext": {SIMULATED_LATENCY: 0}}
    assert api.start_async("order-fulfilment", run_id, body)["status"] == "success"

    tab.open(f"#/workflows/order-fulfilment/runs/{run_id}")

    group = page.locator('#timeline .group[data-step-id="pack-item"]')
    expect(group.locator(".bar.iteration")).to_have_count(2)
    for index in range(2):
        expect(group.locator(f'.bar[data-step-id="pack-item[{index}]"]')).to_have_class(
            re.compile(r"\bstatus-success\b")
        )
    for branch in ("reserve-inventory", "check-fraud"):  # the parallel block's two steps
        expect(page.locator(f'#timeline .bar[data-step-id="{branch}"]')).to_be_visible()


def test_a_run_started_from_the_form_is_followed_live(tab: Tab, page: Page, api: Api) -> None:
    tab.open("#/workflows/slow")

    form = page.locator("#start-form")
    form.locator('[name="batch"]').fill("from-the-form")
    page.fill("#start-metadata", '{"user": {"id": "u-7"}}')
    page.fill("#start-tags", "nightly, ui")
    page.click("#start-submit")

    expect(page).to_have_url(re.compile(r"#/workflows/slow/runs/[^/]+$"))
    expect(page.locator("#run-status")).to_have_text("running")
    expect(page.locator("#run-status")).to_have_text("success")
    run_id = page.url.rsplit("/", 1)[-1]
    run = api.run("slow", run_id)
    assert run["result"] == {"batch": "from-the-form"}
    assert run["tags"] == ["nightly", "ui"]
    assert run["metadata"] == {"user.id": "u-7"}

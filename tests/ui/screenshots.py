"""The README's pictures of the run browser: ``make screenshots``.

(``python -m tests.ui.screenshots``, from the checkout.)

Starts the browser tests' server (`tests.ui.support.ServerProcess`), runs the showcase order
workflow a few times through the API (approved, rejected, waiting for a manager, and a small
order that needs no approval), then has Chromium sign in through the token form and save, at
1400x900:

- ``docs/images/run-browser-runs.png``: the runs of ``order-fulfilment``;
- ``docs/images/run-browser-timeline.png``: the approved run's timeline (its parallel block
  and its foreach of packing tasks, grouped).
"""

from __future__ import annotations

import copy
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect, sync_playwright

from examples.order_fulfilment import sample_order, sample_tracing
from tests.ui.support import HEIGHT, REPO, TOKEN, WIDTH, Api, ServerProcess, launch_chromium

IMAGES = REPO / "docs" / "images"
WORKFLOW = "order-fulfilment"


def _order(order_id: str, customer: str, items: int | None = None) -> dict[str, Any]:
    """The sample order under another id, for another customer (`items` lines, shipped
    standard: under the approval limit)."""
    order = copy.deepcopy(sample_order())
    order["order_id"] = order_id
    order["customer"]["name"] = customer
    order["customer"]["id"] = "CUS-" + order_id.removeprefix("ORD-")[-4:]
    if items is not None:
        order["items"] = order["items"][:items]
        order["shipping"] = "standard"
    return order


def _body(order: dict[str, Any]) -> dict[str, Any]:
    tracing = sample_tracing()
    return {
        "inputData": order,
        "resourceId": order["customer"]["id"],
        "tracingOptions": {
            "metadata": {"user": {"id": "u-42"}, "order": {"id": order["order_id"]}},
            "tags": list(tracing.tags or ()),
        },
    }


def seed_runs(api: Api) -> str:
    """Four order runs of every ending; the id of the approved one (the timeline's)."""
    approval = {"approved": True, "approver": "Grace Hopper"}
    api.start_async(WORKFLOW, "ORD-20414", _body(_order("ORD-20414", "Dorothy Vaughan", items=2)))
    api.start_async(WORKFLOW, "ORD-20415", _body(_order("ORD-20415", "Mary Jackson")))
    api.resume_async(
        WORKFLOW, "ORD-20415", {"resumeData": {"approved": False, "approver": "Grace Hopper"}}
    )
    api.start_async(WORKFLOW, "ORD-20417", _body(_order("ORD-20417", "Katherine Johnson")))
    api.resume_async(WORKFLOW, "ORD-20417", {"resumeData": approval})
    api.start_async(WORKFLOW, "ORD-20419", _body(_order("ORD-20419", "Annie Easley")))
    return "ORD-20417"


def sign_in(page: Page, url: str) -> None:
    page.goto(f"{url}/")
    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    expect(page.locator("#token-form")).to_be_hidden()


def shoot(url: str, run_id: str) -> list[Path]:
    """Save the two pictures; their paths."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    runs, timeline = IMAGES / "run-browser-runs.png", IMAGES / "run-browser-timeline.png"
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        sign_in(page, url)
        page.goto(f"{url}/#/workflows/{WORKFLOW}")
        expect(page.locator(f'tr.run-row[data-run-id="{run_id}"]')).to_be_visible()
        page.screenshot(path=str(runs))
        page.goto(f"{url}/#/workflows/{WORKFLOW}/runs/{run_id}")
        expect(page.locator("#run-status")).to_have_text("success")
        expect(page.locator('#timeline .bar[data-step-id="send-confirmation"]')).to_be_visible()
        page.wait_for_timeout(300)  # let the layout settle
        page.screenshot(path=str(timeline))
        browser.close()
    return [runs, timeline]


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="spanflow-ui-") as scratch,
        ServerProcess(Path(scratch) / "runs.db") as server,
        Api(server.url) as api,
    ):
        run_id = seed_runs(api)
        saved = shoot(server.url, run_id)
    for path in saved:
        print(path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())

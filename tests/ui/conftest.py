"""Fixtures of the browser tests: one server, one Chromium, one signed-in tab for the module.

The server is ``spanflow serve tests.ui.app:app`` (a process of its own, a SQLite file in a
temporary directory, a bearer token, a Jaeger UI URL). The browser is Debian's Chromium under
Playwright (`tests.ui.support.launch_chromium`). The tab signs in once, through the page's own
token form; each test then loads the page afresh at its own hash route (``#/agents/weather``)
and the token stays in the tab's sessionStorage. A missing
Chromium or Playwright is a failure in CI (``CI=true``, where ``make`` installs both), a skip
elsewhere.

Every tab records what a run's text might make it do: calls to ``alert`` (overridden before
any of the page's scripts run) and any dialog the browser opens (`Tab.alerts`, `Tab.dialogs`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from tests.ui.support import (
    HEIGHT,
    TOKEN,
    WIDTH,
    Api,
    BrowserMissing,
    ServerProcess,
    launch_chromium,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PAGE_TIMEOUT_MS = 10_000
"""How long an expectation waits before failing: a hung page, not a slow one."""

RECORD_ALERTS = """
window.__alerts = [];
window.alert = (message) => { window.__alerts.push(String(message)); };
"""


def _missing(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``spanflow serve tests.ui.app:app`` with a token, on a fresh SQLite file."""
    db = tmp_path_factory.mktemp("ui") / "runs.db"
    with ServerProcess(db) as served:
        yield served


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[Api]:
    """The server's API with the token: how a test puts runs in the store."""
    with Api(server.url, server.token) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, under Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        _missing(f"the browser tests need Playwright (the dev extra: make setup): {err}")
    with sync_playwright() as playwright:
        try:
            chromium = launch_chromium(playwright)
        except BrowserMissing as err:
            _missing(str(err))
        yield chromium
        chromium.close()


@dataclass
class Tab:
    """The signed-in tab, at `url`, and what the page tried to show the person."""

    page: Page
    url: str
    dialogs: list[str] = field(default_factory=list)

    def open(self, route: str) -> None:
        """Load the page afresh at the hash route `route` (``#/workflows/slow``), so that no
        test sees what the previous one left on the page (the token stays in the tab)."""
        self.page.goto("about:blank")
        self.page.goto(f"{self.url}/{route}")

    def alerts(self) -> list[str]:
        calls: list[str] = self.page.evaluate("window.__alerts")
        return calls


@pytest.fixture(scope="module")
def tab(browser: Browser, server: ServerProcess) -> Iterator[Tab]:
    """A 1400x900 tab that has signed in through the page's token form."""
    from playwright.sync_api import expect

    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    context.add_init_script(RECORD_ALERTS)
    page = context.new_page()
    tab = Tab(page, server.url)
    page.on("dialog", lambda dialog: _dismiss(tab, dialog))
    page.goto(f"{server.url}/")
    # The API answers 401 without the token: the page asks for it.
    expect(page.locator("#token-form")).to_be_visible()
    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    expect(page.locator("#token-form")).to_be_hidden()
    expect(page.locator('a[href="#/workflows/approval"]').first).to_be_visible()
    yield tab
    context.close()


def _dismiss(tab: Tab, dialog: Any) -> None:
    tab.dialogs.append(f"{dialog.type}: {dialog.message}")
    dialog.dismiss()


@pytest.fixture
def page(tab: Tab) -> Page:
    return tab.page


@pytest.fixture
def run_id(request: pytest.FixtureRequest) -> str:
    """A run id naming the test (unique in the module's store)."""
    name: str = request.node.name
    return name.removeprefix("test_").replace("_", "-")[:60]

"""Fixtures of the dashboard tests: signed-in HTTP clients, and a real Chromium driven by Playwright."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.dashboard.deps import COOKIE as COOKIE_NAME  # noqa: F401 - used by the tests
from tests.conftest import ROOT, Api, new_tenant_api

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ARTIFACTS = Path(os.environ.get("MEMCUBE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "dashboard"
CHROMIUM = os.environ.get("MEMCUBE_TEST_CHROMIUM", "/usr/bin/chromium")
# Headless, and quiet: without the background-networking flags Chromium keeps trying to reach Google's servers.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Dashboard:
    """An HTTP client of the dashboard (no redirects followed), signed in or not."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=60)

    def sign_in(self, token: str) -> httpx.Response:
        return self.http.post("/dashboard/signin", data={"token": token})

    def csrf(self, path: str = "/dashboard") -> str:
        page = self.http.get(path)
        assert page.status_code == 200, page.text
        return CSRF.search(page.text).group(1)

    def __getattr__(self, name: str):  # noqa: ANN204 - delegate get, post, cookies
        return getattr(self.http, name)


@pytest.fixture()
def tenant_admin(server: str, admin: Api) -> Iterator[Api]:
    """An API client of a fresh tenant whose key has every scope, admin included."""
    client = new_tenant_api(server, admin, scopes=("read", "write", "admin"))
    yield client
    client.http.close()


@pytest.fixture()
def dashboard(server: str, tenant_admin: Api) -> Iterator[Dashboard]:
    """The dashboard signed in with `tenant_admin`'s key."""
    client = Dashboard(server)
    response = client.sign_in(tenant_admin.token)
    assert response.status_code == 303, response.text
    yield client
    client.http.close()


@pytest.fixture()
def anonymous(server: str) -> Iterator[Dashboard]:
    client = Dashboard(server)
    yield client
    client.http.close()


@pytest.fixture(scope="session")
def browser():  # noqa: ANN201 - a Playwright Browser
    """Debian's Chromium driven by Playwright, once per run (browser downloads do not work here: `apt-get install
    chromium`, or set MEMCUBE_TEST_CHROMIUM)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: `apt-get install chromium`, or set "
                    "MEMCUBE_TEST_CHROMIUM to its path")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, server: str, request: pytest.FixtureRequest):  # noqa: ANN001, ANN201 - Playwright objects
    """A fresh browser context (no cookies) and page on the test server."""
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.errors = errors
    yield page
    context.close()


def shoot(page, name: str) -> Path:  # noqa: ANN001 - a Playwright Page
    """Save a full-page screenshot as a test artifact (test-artifacts/ is not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def browser_sign_in(page, token: str) -> None:  # noqa: ANN001 - a Playwright Page
    page.goto("/dashboard/signin")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"

"""The API's docs page (/docs) in a real browser with every request off this machine refused: Swagger UI comes
from the fastapi-offline package, served by the app, so it works offline."""

from urllib.parse import urlparse

from tests.services.dashboard.conftest import shoot


def offline(page, server):
    """Refuse every request that leaves the test server; return the list of refused URLs."""
    refused: list[str] = []
    here = urlparse(server).netloc

    def route(request_route):
        url = request_route.request.url
        if urlparse(url).netloc == here or url.startswith("data:"):
            request_route.continue_()
        else:
            refused.append(url)
            request_route.abort()

    page.route("**/*", route)
    return refused


def test_swagger_ui_renders_every_operation_offline(page, server):
    refused = offline(page, server)
    page.goto("/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = {el.get_attribute("data-path") for el in page.query_selector_all(".opblock-summary-path")}
    assert {"/v1/memories", "/v1/search", "/v1/export", "/v1/import"} <= paths
    shoot(page, "api-docs")
    assert refused == [] and page.errors == []


def test_no_page_that_would_reach_a_cdn(page, server):
    assert page.goto("/redoc").status == 404

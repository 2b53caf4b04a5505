"""The API explorer works offline: ``/docs`` (Swagger UI) loads only from the server, so with
every request beyond 127.0.0.1 aborted it still lists the operations."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from playwright.sync_api import BrowserContext, Route
from ui_helpers import Served

#: operations every explorer must list (a sample across the routers)
OPERATIONS = [
    "/v1/workflows",
    "/v1/workflows/{workflow_id}/resume",
    "/v1/resume",
    "/hooks/{token}",
    "/metrics",
]


def _offline(context: BrowserContext) -> list[str]:
    """Abort every request that leaves loopback; returns the list of what was tried."""
    blocked: list[str] = []

    def guard(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    return blocked


def test_swagger_ui_lists_the_operations_offline(context: BrowserContext, served: Served) -> None:
    blocked = _offline(context)
    page = context.new_page()
    page.goto(f"{served.url}/docs")
    page.locator(".opblock").first.wait_for()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    for operation in OPERATIONS:
        assert any(p.replace("\u200b", "") == operation for p in paths), (operation, paths)
    assert len(paths) == _operation_count(served)
    assert blocked == []


def test_explorer_assets_come_from_the_server(served: Served) -> None:
    html = httpx.get(f"{served.url}/docs", timeout=10).text
    assert "/docs/assets/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    asset = httpx.get(f"{served.url}/docs/assets/swagger-ui-bundle.js", timeout=10)
    assert asset.status_code == 200 and "SwaggerUIBundle" in asset.text[:2000]
    assert httpx.get(f"{served.url}/redoc", timeout=10).status_code == 404  # ReDoc fetches from a CDN


def _operation_count(served: Served) -> int:
    schema = httpx.get(f"{served.url}/openapi.json", timeout=10).json()
    return sum(len(ops) for ops in schema["paths"].values())

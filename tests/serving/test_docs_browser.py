"""``/docs`` in a real browser with the internet blocked: it renders (it was blank offline)."""

from __future__ import annotations

import pytest
from support import headless_chromium


@pytest.mark.integration
def test_swagger_ui_renders_in_chromium_with_every_outside_request_blocked(server):
    outside: list[str] = []

    def only_the_api(route) -> None:
        if route.request.url.startswith(server.base_url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with headless_chromium() as browser:
        page = browser.new_page()
        page.route("**/*", only_the_api)
        page.goto(f"{server.base_url}/docs")
        title = page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        assert "Employee attrition API" in title.inner_text()
        predict = page.locator(".opblock-summary-path", has_text="/predict")
        predict.first.click()
        # The operation opens with the documented request and the 200 example answer.
        page.wait_for_selector(".opblock-body", timeout=10_000)
        body = page.inner_text(".opblock-body")
        assert "EmployeeNumber" in body and "probability" in body
        page.screenshot(path=str(server.export_dir.parent / "docs.png"))
    assert outside == []

"""``/docs`` in a real browser with the internet blocked: it renders (it was blank offline)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
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
        # Swagger UI inserts the body first and fills it in a later render: wait for the text
        # itself (reading the body once raced the render and saw '').
        body = page.locator(".opblock-body").first
        expect(body).to_contain_text("EmployeeNumber", timeout=15_000)
        expect(body).to_contain_text("probability", timeout=15_000)
        page.screenshot(path=str(server.export_dir.parent / "docs.png"))
    assert outside == []

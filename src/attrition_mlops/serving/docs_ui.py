"""``/docs`` without the internet: Swagger UI's assets are served by the API itself.

FastAPI's default page loads Swagger UI's script and stylesheet from a CDN, so in an offline or
air-gapped cluster (normal for HR data) ``/docs`` is a blank page. The same Swagger UI 5
distribution ships in the ``fastapi-swagger`` wheel; we use it only as an asset bundle: the page
is FastAPI's own ``get_swagger_ui_html``, pointed at ``/docs/assets/*``. The assets are read once
and served from memory with a long cache lifetime; nothing on the page leaves the API's origin.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
#: The files the page loads, with their media types: anything else under /docs/assets is a 404.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


@cache
def asset(name: str) -> bytes:
    """The packaged file ``name`` (one of :data:`ASSETS`)."""
    return (resources.files("fastapi_swagger") / "resources" / name).read_bytes()


def install_docs(app: FastAPI) -> None:
    """Add ``/docs``, its assets and the OAuth2 redirect page to ``app`` (built with
    ``docs_url=None``). Like FastAPI's own docs they are public: the schema holds no secrets."""

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(ASSETS_URL + "/{name}", include_in_schema=False)
    async def swagger_asset(name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            return Response(status_code=404)
        return Response(
            asset(name),
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=86400"},
        )

"""One error format for every failure, and the request-body checks that produce it.

Every error is ``{"detail": ..., "errors": [{"record", "field", "problem", "type"}], "request_id"}``
with ``record`` the 0-based index in the posted array. Input values are never echoed back: they
may be huge, may be identifiers, and NaN cannot even be written as JSON. What the client chose
and does come back (a field name, a content type) is clipped, and at most
``MAX_LISTED_ERRORS`` problems are listed, so an error body stays under ~25 KB whatever the
request held.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from attrition_mlops.serving.body import UNKNOWN_FIELD, decode_json
from attrition_mlops.serving.metrics import request_id
from attrition_mlops.serving.schemas import ErrorResponse, FieldError

log = logging.getLogger(__name__)
MAX_LISTED_ERRORS = 50
MAX_FIELD_CHARS = 100  # an unknown field's name, as echoed in `field`
MAX_PROBLEM_CHARS = 300
_JSON_TYPES = ("application/json",)


def error_response(
    status: int, detail: str, request: Request, errors=(), headers=None
) -> JSONResponse:
    body = ErrorResponse(detail=detail, errors=list(errors), request_id=request_id(request.scope))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def clip(text: str, limit: int) -> str:
    """``text``, cut to ``limit`` characters with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def _problem(error: dict[str, Any]) -> FieldError:
    loc = [part for part in error.get("loc", ()) if part != "body"]
    record = loc[0] if loc and isinstance(loc[0], int) else None
    field = clip(str(loc[1]), MAX_FIELD_CHARS) if record is not None and len(loc) > 1 else None
    kind = error.get("type", "invalid")
    ctx = error.get("ctx") or {}
    message = error.get("msg", "invalid value")
    if not loc:  # the body as a whole
        message = {
            "missing": "request body is required: a JSON array of employee records",
            "list_type": "the body must be a JSON array of employee records",
            "too_short": "the array is empty: send at least one employee record",
            "too_long": f"too many records: at most {ctx.get('max_length')} per request",
        }.get(kind, message)
    elif kind == "extra_forbidden":
        message = UNKNOWN_FIELD
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "model_type":
        message = "each record must be a JSON object of employee fields"
    problem = clip(message, MAX_PROBLEM_CHARS)
    return FieldError(record=record, field=field, problem=problem, type=kind)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    problems = [_problem(error) for error in errors[:MAX_LISTED_ERRORS]]
    count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
    listed = f" (first {MAX_LISTED_ERRORS} listed)" if len(errors) > MAX_LISTED_ERRORS else ""
    return error_response(422, f"invalid request: {count}{listed}", request, problems)


def too_large(limit: int) -> str:
    return f"request body too large: at most {limit} bytes (ATTRITION_SERVING_MAX_BODY_BYTES)"


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 413:
        detail = too_large(request.app.state.serving.settings.max_body_bytes)
    return error_response(exc.status_code, detail, request, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return error_response(500, "internal error; quote the request id when reporting it", request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def _invalid_body(message: str, kind: str = "json_invalid") -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": ("body",), "msg": message}])


def check_content_type(content_type: str | None) -> None:
    """415 unless the body is declared as JSON (``application/json`` or any ``+json`` type)."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in _JSON_TYPES and not media_type.endswith("+json"):
        raise HTTPException(
            415,
            f"Content-Type must be application/json, not {clip(content_type or 'missing', 100)!r}",
        )
    charset = _parameter(content_type, "charset")
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        raise HTTPException(
            415, f"the body must be UTF-8 encoded JSON, not charset={clip(charset, 40)!r}"
        )


def _parameter(content_type: str | None, name: str) -> str | None:
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"')
    return None


async def read_body(request: Request) -> bytes:
    try:
        return await request.body()  # the body size limit applies while this reads
    except ClientDisconnect:  # nobody is left to answer; keep it out of the error log
        raise HTTPException(400, "client disconnected before sending the whole body") from None


async def parse_json_body(request: Request) -> None:
    """Content type, encoding and JSON syntax checks for a route FastAPI handles itself."""
    check_content_type(request.headers.get("content-type"))
    decode_json(await read_body(request), request.app.state.serving.settings.max_records)


class JSONBodyRoute(APIRoute):
    """An APIRoute whose request body gets :func:`parse_json_body` before FastAPI sees it.

    FastAPI then parses the body again (Starlette's ``request.json()``) and validates it. The
    API serves ``/predict`` through the leaner :class:`~.routes.predict.PredictRoute`; this
    class is the reference it is tested against.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            await parse_json_body(request)
            return await handler(request)

        return checked

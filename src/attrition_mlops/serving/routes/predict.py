"""POST /predict: a JSON array of employee records in, one prediction per record out.

No ``from __future__ import annotations`` here: the body type is built per app (its maximum
length is a setting), and FastAPI must see the real annotation, not a string naming a local.

The endpoint is declared as a normal FastAPI route (its signature, ``response_model`` and
``responses`` make the OpenAPI document), but served by :class:`PredictRoute`, which does the
same work as FastAPI's generic request handler without its per-request overhead. Tests check
that both answer every request the same way.
"""

import inspect
import json
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Body, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.background import BackgroundTask

from attrition_mlops.data.example import EXAMPLE_REQUEST
from attrition_mlops.data.inference_log import SIMULATED_HEADER
from attrition_mlops.serving.body import decode_json
from attrition_mlops.serving.deps import ModelDep, ServingState, StateDep, current_model
from attrition_mlops.serving.errors import check_content_type, read_body
from attrition_mlops.serving.loaded import LoadedModel
from attrition_mlops.serving.log_writer import InferenceLogWriter, PendingEntry
from attrition_mlops.serving.metrics import request_id, request_started
from attrition_mlops.serving.schemas import (
    EmployeeRecord,
    ErrorResponse,
    PredictResponse,
)
from attrition_mlops.serving.security import ApiKeyCheck

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        401: "missing or wrong API key (when auth is on)",
        413: "request body larger than the configured limit",
        415: "Content-Type is not application/json",
        422: "invalid records: one entry per problem, with record index and field",
        503: "no model loaded yet",
    }.items()
}


#: Bodies up to this size are parsed and validated on the event loop (~0.1 ms for one record);
#: larger ones in the worker pool, in one hop.
INLINE_BODY_BYTES = 16 * 1024


def _records_body(max_records: int) -> Any:
    return Annotated[
        list[EmployeeRecord],  # type: ignore[valid-type]
        Body(
            min_length=1,
            max_length=max_records,
            description=f"1 to {max_records} employee records",
            openapi_examples={
                "original": {
                    "summary": "The original proof of concept's example request",
                    "value": EXAMPLE_REQUEST,
                }
            },
        ),
    ]


class _LogAfterSending(BackgroundTask):
    """Hand the inference-log entry to the writer once the response has been sent.

    Waking the writer thread earlier lets it take the GIL while the response is still being
    built and sent. Starlette runs a response's background task right after the last body
    chunk, inside the request's task, so uvicorn's graceful drain still waits for it.
    """

    def __init__(self, writer: InferenceLogWriter, entry: PendingEntry) -> None:
        super().__init__(writer.submit, entry)

    async def __call__(self) -> None:
        self.func(*self.args)  # never blocks: an unbounded queue


class PredictRoute(APIRoute):
    """Serve the endpoint without FastAPI's dependency solving and response re-validation.

    Per request, in the order a client would want to learn about problems: the API key (if the
    router was included with the :func:`~..security.api_key_guard` dependency), the content
    type, the JSON body (same checks and messages as :class:`~..errors.JSONBodyRoute`), the
    records (validated by the endpoint's own ``records`` annotation, so docs and checks cannot
    drift apart), then the model. The endpoint returns a ready-made response.
    """

    PARAMETERS = ["records", "request", "model", "state"]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        signature = inspect.signature(endpoint)
        if list(signature.parameters) != self.PARAMETERS:
            expected = ", ".join(self.PARAMETERS)
            raise TypeError(f"{self.path}: PredictRoute calls the endpoint as ({expected})")
        validate = TypeAdapter(signature.parameters["records"].annotation).validate_python
        auth = _api_key_checks(self)

        def parse(body: bytes, max_records: int) -> list[Any]:
            payload = decode_json(body, max_records)
            if payload is None:  # as in FastAPI: a JSON null body counts as no body
                raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": ""}])
            try:
                return validate(payload, from_attributes=True)  # as FastAPI validates bodies
            except ValidationError as err:
                errors = err.errors(include_url=False)
                raise RequestValidationError(
                    [{**e, "loc": ("body", *e["loc"])} for e in errors]
                ) from None

        async def handler(request: Request) -> Response:
            state: ServingState = request.app.state.serving
            headers = request.headers
            for check in auth:
                check.check_headers(headers)
            check_content_type(headers.get("content-type"))
            body = await read_body(request)
            max_records = state.settings.max_records
            if len(body) <= INLINE_BODY_BYTES:
                records = parse(body, max_records)
            else:  # parse and validate off the event loop: /health/live stays responsive
                records = await to_thread.run_sync(parse, body, max_records)
            return await endpoint(records, request, current_model(state), state)

        return handler


def _api_key_checks(route: APIRoute) -> list[ApiKeyCheck]:
    """The API key checks among the route's dependencies; any other dependency is an error."""
    checks = []
    for dependency in route.dependencies:
        check = getattr(dependency.dependency, "api_key_check", None)
        if not isinstance(check, ApiKeyCheck):
            raise TypeError(f"{route.path}: PredictRoute cannot run {dependency.dependency!r}")
        checks.append(check)
    return checks


def _response(rid: str, model: LoadedModel, outputs: list[dict[str, Any]]) -> bytes:
    # The documented PredictResponse, serialised directly: the values are ours (floats in
    # [0, 1], "Yes"/"No", booleans), so validating them again, as FastAPI does for a
    # response_model, would only cost time. allow_nan=False: never emit invalid JSON.
    body = {
        "request_id": rid,
        "model_name": model.card.name,
        "model_version": model.card.version,
        "predictions": outputs,
    }
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def build_router(max_records: int, *, route_class: type[APIRoute] = PredictRoute) -> APIRouter:
    """``route_class=errors.JSONBodyRoute``: the same endpoint through FastAPI's own handler."""
    # The body size limit is the app's middleware (declared sizes and bytes received).
    router = APIRouter(tags=["prediction"], route_class=route_class)
    Records = _records_body(max_records)

    @router.post("/predict", response_model=PredictResponse, responses=_ERRORS)
    async def predict(
        records: Records, request: Request, model: ModelDep, state: StateDep
    ) -> Response:
        """Attrition probability, label and outlier flag for each record, in input order."""
        rows = [record.__dict__ for record in records]
        # Small requests score inline: 1 record costs ~0.1 ms and 32 ~0.4 ms on the fast path,
        # less than a thread hop costs here. Larger ones go to the worker pool in ONE hop, so a
        # 1,000-record request never blocks the loop.
        if len(rows) <= state.settings.inline_max_records:
            scored = model.predict(rows)
        else:
            scored = await to_thread.run_sync(model.predict, rows)
        outputs = scored.outputs()
        rid = request_id(request.scope) or ""
        card = model.card
        state.metrics.scored(card.version, len(rows), int(scored.is_outlier.sum()))
        started = request_started(request.scope) or time.perf_counter()
        entry = PendingEntry(
            timestamp=datetime.now(UTC),
            request_id=rid,
            model_name=card.name,
            model_version=card.version,
            inputs=rows,
            outputs=outputs,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            simulated=request.headers.get(SIMULATED_HEADER) == "true",
        )
        return Response(
            _response(rid, model, outputs),
            media_type="application/json",
            background=_LogAfterSending(state.writer, entry),
        )

    return router

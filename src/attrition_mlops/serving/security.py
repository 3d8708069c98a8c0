"""API-key authentication: on when ATTRITION_SERVING_API_KEY is set, off otherwise.

The key may be sent as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``; it is compared
in constant time. Health and metrics endpoints stay open for probes and scrapers.

:class:`ApiKeyCheck` is the check itself. ``/model`` runs it as a FastAPI dependency (which also
puts both schemes in the OpenAPI document); ``/predict``'s route calls it directly.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated

from fastapi import HTTPException, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import SecretStr

API_KEY_HEADER = "X-API-Key"
CHALLENGE = 'Bearer realm="attrition-api"'

_api_key = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="the API key (or use a bearer token)"
)
_bearer = HTTPBearer(auto_error=False, description="the API key as a bearer token")


class ApiKeyCheck:
    def __init__(self, expected: SecretStr) -> None:
        self._secret = expected.get_secret_value().encode()

    def __call__(self, key: str | None, bearer: str | None) -> None:
        """Let the request through only if one of the presented credentials is the key."""
        presented = [c for c in (key, bearer) if c]
        # compare every presented credential, so timing does not reveal which header matched
        matches = [hmac.compare_digest(c.encode(), self._secret) for c in presented]
        if not any(matches):
            reason = "invalid API key" if presented else "missing API key"
            raise HTTPException(
                401,
                f"{reason}: send it as '{API_KEY_HEADER}: <key>' or 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": CHALLENGE},
            )

    def check_headers(self, headers: Mapping[str, str]) -> None:
        """The same check on raw request headers, read as FastAPI's security classes do."""
        scheme, credentials = get_authorization_scheme_param(headers.get("authorization"))
        bearer = credentials if scheme.lower() == "bearer" else None
        self(headers.get(API_KEY_HEADER.lower()), bearer)


def api_key_guard(check: ApiKeyCheck) -> Callable[..., Awaitable[None]]:
    """The check as a FastAPI dependency (async: no thread-pool hop per request)."""

    async def require_api_key(
        key: Annotated[str | None, Security(_api_key)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> None:
        check(key, bearer.credentials if bearer else None)

    require_api_key.api_key_check = check  # type: ignore[attr-defined]  (for PredictRoute)
    return require_api_key

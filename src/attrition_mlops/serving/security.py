"""API-key authentication: on when ATTRITION_SERVING_API_KEY is set, off otherwise.

The key may be sent as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``; it is compared
in constant time. Health and metrics endpoints stay open for probes and scrapers.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import HTTPException, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

API_KEY_HEADER = "X-API-Key"
CHALLENGE = 'Bearer realm="attrition-api"'

_api_key = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="the API key (or use a bearer token)"
)
_bearer = HTTPBearer(auto_error=False, description="the API key as a bearer token")


def api_key_guard(expected: SecretStr) -> Callable[..., None]:
    """A dependency that lets a request through only with the right key."""
    secret = expected.get_secret_value().encode()

    def require_api_key(
        key: Annotated[str | None, Security(_api_key)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> None:
        presented = [c for c in (key, bearer.credentials if bearer else None) if c]
        # compare every presented credential, so timing does not reveal which header matched
        matches = [hmac.compare_digest(c.encode(), secret) for c in presented]
        if not any(matches):
            reason = "invalid API key" if presented else "missing API key"
            raise HTTPException(
                401,
                f"{reason}: send it as '{API_KEY_HEADER}: <key>' or 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": CHALLENGE},
            )

    return require_api_key

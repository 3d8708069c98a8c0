"""Talking to an MLflow tracking server: bounded waits and a clear error when it is unreachable.

MLflow's HTTP client waits up to 120 s per request and retries 7 times with exponential backoff:
against a server that is down or blackholed, one call can take many minutes. Every process of
this project that talks to MLflow calls :func:`bound_http_requests` first, which sets the
project's (much shorter) defaults for the variables MLflow reads on each request; a value
already in the environment wins, so an operator can still raise them (docs/configuration.md).

:func:`reaching` turns MLflow's generic "API request ... failed" error for a connection that
could not be made, or got no answer, into :class:`TrackingServerUnreachableError`, whose message
names the URI and what to check.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import requests
from mlflow.exceptions import MlflowException

#: The project's defaults (MLflow's own: 120 s, 7 retries, backoff factor 2). One attempt
#: waits at most TIMEOUT seconds for the connection and for each read; retries back off
#: FACTOR * 2**n seconds (+ up to 1 s jitter). Worst case against a server that accepts
#: connections and never answers: 3 x 15 s + ~5 s ≈ 50 s; a refused connection: ~5 s.
HTTP_DEFAULTS: dict[str, str] = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


class TrackingServerUnreachableError(RuntimeError):
    """The MLflow tracking/registry server could not be reached (refused, reset, timed out)."""


def bound_http_requests() -> dict[str, str]:
    """Apply :data:`HTTP_DEFAULTS` where the environment does not set them; return the values.

    The environment (inherited by child processes) is the only channel: MLflow reads these
    variables itself, per request.
    """
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in HTTP_DEFAULTS}


def display_uri(uri: str) -> str:
    """The URI without any user:password part, for messages and logs."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _network_cause(err: BaseException) -> requests.RequestException | None:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, requests.ConnectionError | requests.Timeout):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def unreachable_message(uri: str, cause: requests.RequestException) -> str:
    values = {name: os.environ.get(name, default) for name, default in HTTP_DEFAULTS.items()}
    timeout, retries = (
        values["MLFLOW_HTTP_REQUEST_TIMEOUT"],
        values["MLFLOW_HTTP_REQUEST_MAX_RETRIES"],
    )
    # After the last retry urllib3 wraps a read timeout in MaxRetryError, which requests turns
    # into a ConnectionError: the text is what tells the two apart.
    if isinstance(cause, requests.Timeout) or "timed out" in str(cause).lower():
        what = f"no answer within {timeout} s"
    elif "refused" in str(cause).lower():
        what = "connection refused"
    else:
        what = f"connection failed ({type(cause).__name__})"
    return (
        f"cannot reach the MLflow tracking server at {display_uri(uri)}: {what} "
        f"({1 + int(retries)} attempts). "
        "Check that ATTRITION_TRACKING_URI (and ATTRITION_REGISTRY_URI, if set) name the right "
        "server, that it is running, and that this host can reach it (DNS, proxy, firewall). "
        "Waits are bounded by MLFLOW_HTTP_REQUEST_TIMEOUT and MLFLOW_HTTP_REQUEST_MAX_RETRIES "
        "(docs/configuration.md)."
    )


@contextmanager
def reaching(uri: str) -> Iterator[None]:
    """Raise :class:`TrackingServerUnreachableError` for a network failure inside the block."""
    try:
        yield
    except (MlflowException, requests.RequestException) as err:
        cause = _network_cause(err)
        if cause is None:
            raise
        raise TrackingServerUnreachableError(unreachable_message(uri, cause)) from err

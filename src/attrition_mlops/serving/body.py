"""The request body, from bytes to a JSON value whose size and shape are safe to validate.

Cost grows with what a body holds, not with its bytes: 1.8 MB of unknown keys took ~0.3 s to
parse and ~1.6 s to validate (200,000 errors), all on the event loop. Before anything expensive:

1. encoding: UTF-8 only (a UTF-8 BOM is tolerated); UTF-16/32 are refused with 415 rather than
   decoded, as ``json.loads(bytes)`` would silently do;
2. a structural budget, counted on the raw bytes (C speed, ~1 ms for 2 MB): every JSON value
   after the first needs a ``,`` or a ``:``, so their count bounds the parser's work. A body
   of ``max_records`` valid records has at most ``max_records * 2 * fields`` of them (the
   budget allows a quarter more);
3. after parsing: at most ``max_records`` records, at most ``MAX_KEYS`` keys per record and at
   most ``MAX_UNKNOWN`` unknown fields in all (else only those are reported), so validation
   never builds tens of thousands of errors (68,000 took ~0.2 s, holding the GIL).

Nesting depth needs no check of its own: records are flat (a nested value is one type error),
and the parser stops at Python's recursion limit (a 422, tested).
"""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from attrition_mlops.data import contract

FIELDS = len(contract.INPUT_COLUMNS)
_NAMES = frozenset(contract.INPUT_COLUMNS)
#: The problem reported for a field the contract does not have.
UNKNOWN_FIELD = f"unknown field: not one of the {FIELDS} contract input fields"
#: Unknown fields in one request beyond which validation is skipped: they alone fill the error
#: list (each record with wrong keys also gets one "missing" error per absent field).
MAX_UNKNOWN = 50
#: Keys a record may have before validation is skipped for it: twice the contract, so a few
#: unknown fields are still reported by name, beside the record's other problems.
MAX_KEYS = 2 * FIELDS
_UTF8 = ("utf-8", "utf-8-sig")


def _invalid(message: str, kind: str = "json_invalid", loc: tuple = ()) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": ("body", *loc), "msg": message}])


def structural_budget(max_records: int) -> int:
    # a quarter more than a full valid request: a few records too many still get the
    # validator's "too many records"
    return (max_records + max_records // 4 + 1) * 2 * FIELDS


def decode_text(body: bytes) -> str:
    """The body as text: 415 for another Unicode encoding, 422 for bytes that are not UTF-8."""
    encoding = json.detect_encoding(body)  # what json.loads(bytes) would decode it as
    if encoding not in _UTF8 and _looks_like_json(body, encoding):
        raise HTTPException(
            415, f"the body must be UTF-8 encoded JSON; this one looks like {encoding.upper()}"
        )
    encoding = "utf-8-sig" if encoding == "utf-8-sig" else "utf-8"
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as err:
        raise _invalid(
            f"body is not UTF-8 text (byte 0x{body[err.start]:02x} at offset {err.start})"
        ) from None


def _looks_like_json(body: bytes, encoding: str) -> bool:
    try:
        start = body[:64].decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    except LookupError:
        return False
    return start[:1] in ("[", "{", '"') or start[:1].isdigit()


def decode_json(body: bytes, max_records: int) -> Any:
    """The parsed body, or a 4xx naming exactly what is wrong with it (see the module doc)."""
    if not body.strip():
        raise _invalid("request body is required: a JSON array of employee records", "missing")
    text = decode_text(body)
    separators = body.count(b",") + body.count(b":")
    if separators > structural_budget(max_records):
        raise _invalid(
            f"body too complex: {separators} JSON values, far more than a request of at most "
            f"{max_records} records of {FIELDS} fields holds",
            "too_complex",
        )
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise _invalid(
            f"body is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})"
        ) from None
    except RecursionError:
        raise _invalid("body is not acceptable JSON: nested too deeply") from None
    except ValueError as err:  # e.g. an integer literal with thousands of digits
        raise _invalid(f"body is not acceptable JSON: {err}") from None
    check_shape(payload, max_records)
    return payload


def check_shape(payload: Any, max_records: int) -> None:
    """At most ``max_records`` records, at most :data:`MAX_KEYS` keys in each (422 otherwise).

    The messages and types are the validator's own for the record count, so a request gets the
    same answer whichever check sees it first.
    """
    if not isinstance(payload, list):
        return
    if len(payload) > max_records:
        message = f"List should have at most {max_records} items after validation"
        error = {"type": "too_long", "loc": ("body",), "msg": message}
        raise RequestValidationError([error | {"ctx": {"max_length": max_records}}])
    crowded = [
        (i, len(r)) for i, r in enumerate(payload) if isinstance(r, dict) and len(r) > MAX_KEYS
    ]
    if not crowded:
        _check_unknown(payload)
    if crowded:
        raise RequestValidationError(
            [
                {
                    "type": "too_many_fields",
                    "loc": ("body", i),
                    "msg": f"record has {n} fields; an employee record has exactly {FIELDS}",
                }
                for i, n in crowded
            ]
        )


def _check_unknown(records: list[Any]) -> None:
    dicts = [(i, r) for i, r in enumerate(records) if isinstance(r, dict)]
    count = sum(len(r.keys() - _NAMES) for _, r in dicts)
    if count <= MAX_UNKNOWN:
        return
    message = UNKNOWN_FIELD
    first = islice(((i, k) for i, r in dicts for k in r if k not in _NAMES), MAX_UNKNOWN)
    errors = [{"type": "extra_forbidden", "loc": ("body", i, k), "msg": message} for i, k in first]
    # the handler lists the first errors and counts them all: the rest need not be distinct
    raise RequestValidationError(errors + [errors[-1]] * (count - len(errors)))

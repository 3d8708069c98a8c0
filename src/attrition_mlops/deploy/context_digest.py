"""The build context's content address: what the image tag's hex digest is computed over.

Every file of the context counts except ``build.json`` (the build's record of its own result):
a sha256 per file, then one sha256 over ``<file sha256>  <path>`` lines in sorted path order
(sha256sum style). So the same inputs always give the same tag and any changed byte (model,
code, lock, Dockerfile) gives a new one. The one thing left out is the model card's ``aliases``
list: it is a snapshot for humans that moves when the model is promoted, and a promotion must
not turn the image that staging tested into a "different" one for production.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

MODEL_DIR = "model"
CARD_FILE = "model_card.json"
BUILD_RECORD = "build.json"
DIGEST_HEX_CHARS = 12
# Card fields that change without the model changing (see the module docstring).
VOLATILE_CARD_FIELDS = ("aliases",)


def file_digests(root: Path) -> dict[str, str]:
    """sha256 per context file (relative POSIX path), in sorted path order; no ``build.json``."""
    digests = {}
    for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and relative != BUILD_RECORD:
            digests[relative] = hashlib.sha256(_digest_bytes(path, relative)).hexdigest()
    return digests


def _digest_bytes(path: Path, relative: str) -> bytes:
    data = path.read_bytes()
    if relative == f"{MODEL_DIR}/{CARD_FILE}":
        card = {k: v for k, v in json.loads(data).items() if k not in VOLATILE_CARD_FIELDS}
        data = json.dumps(card, sort_keys=True).encode()
    return data


def content_digest(digests: Mapping[str, str]) -> str:
    """One sha256 over ``<file sha256>  <path>`` lines in sorted path order (sha256sum style)."""
    manifest = "".join(f"{digest}  {path}\n" for path, digest in sorted(digests.items()))
    return hashlib.sha256(manifest.encode()).hexdigest()


def image_tag(version: str, digests: Mapping[str, str]) -> str:
    """``v<version>-<12 hex>``: the model version, then the context's content digest."""
    return f"v{version}-{content_digest(digests)[:DIGEST_HEX_CHARS]}"

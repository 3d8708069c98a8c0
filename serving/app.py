"""Entrypoint of the online API: ``python serving/app.py [--host H] [--port P]``.

The same as ``python -m attrition_mlops.serving.server``, the command of the image, compose and
``make serve``: every option and limit comes from ``ATTRITION_SERVING_*`` settings
(docs/serving.md); this file only lets ``--host``/``--port`` override where to listen.
``uvicorn serving.app:app`` also works, without the server limits: ``app`` is built on first
access.
"""

from __future__ import annotations

from typing import Any

from attrition_mlops.serving.server import FACTORY, main  # imports only: builds no app

__all__ = ["FACTORY", "main"]


def __getattr__(name: str) -> Any:
    # Lazy so that importing this module (e.g. to read FACTORY) loads no model.
    if name == "app":
        from attrition_mlops.serving.app import create_app

        globals()["app"] = created = create_app()
        return created
    raise AttributeError(name)


if __name__ == "__main__":
    raise SystemExit(main())

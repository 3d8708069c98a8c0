"""The online prediction API (FastAPI): ``create_app`` in :mod:`attrition_mlops.serving.app`.

Importing this package is cheap; the web framework is only imported with ``serving.app``.
"""

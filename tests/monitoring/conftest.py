"""Fixtures the online-performance tests share."""

from __future__ import annotations

import pytest

from attrition_mlops.monitoring import online_performance as online
from attrition_mlops.serving.settings import get_serving_settings


@pytest.fixture
def serving_key(monkeypatch):
    """Set (or unset) the API's pseudonym key for the job, as the environment gives it."""

    def use(key: str | None) -> None:
        if key is None:
            monkeypatch.delenv(online.KEY_ENV, raising=False)
        else:
            monkeypatch.setenv(online.KEY_ENV, key)
        get_serving_settings.cache_clear()

    yield use
    get_serving_settings.cache_clear()

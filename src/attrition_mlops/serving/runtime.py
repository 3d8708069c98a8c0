"""The served model and the thread that keeps it current.

Hot swap is one reference assignment: the new model is loaded, compiled and warmed completely
on the watcher thread while the old one keeps answering, then ``_model`` is replaced. A request
reads the reference once and uses that model to the end, so every response is computed by, and
labelled with, exactly one version, and no request ever waits for or fails on a swap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from attrition_mlops.serving.loaded import LoadedModel
from attrition_mlops.serving.sources import ModelSource, NoModelAvailableError

log = logging.getLogger(__name__)


class ModelRuntime:
    def __init__(
        self,
        source: ModelSource,
        *,
        poll_seconds: float,
        on_swap: Callable[[LoadedModel | None, LoadedModel], None] | None = None,
    ) -> None:
        self.source = source
        self.poll_seconds = poll_seconds
        self._on_swap = on_swap
        self._model: LoadedModel | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    @property
    def model(self) -> LoadedModel | None:
        """The current model (None until one is loaded). Read it once per request."""
        return self._model

    def load_initial(self, *, fail_fast: bool) -> None:
        """First load. ``fail_fast``: a source that cannot load now never will (a baked dir)."""
        try:
            self.refresh()
        except NoModelAvailableError as err:
            if fail_fast:
                raise
            log.warning("%s; not ready, checking again every %ss", err, self.poll_seconds)
        except Exception:
            if fail_fast:
                raise
            log.exception("could not load from %s yet; will retry", self.source.description)

    def refresh(self) -> bool:
        """Load and swap in the source's current version if it differs; True if swapped."""
        current = self._model
        version = self.source.current_version()
        if version is None:
            if current is None:
                raise NoModelAvailableError(f"nothing to serve from {self.source.description}")
            return False  # alias deleted: keep serving what we have rather than go dark
        if current is not None and version == current.card.version:
            return False
        new = self.source.load()
        self._model = new  # the swap: one reference, atomic for every reader
        self.last_error = None
        log.info(
            "serving %s version %s (was %s)",
            new.card.name, new.card.version, current.card.version if current else "none",
        )  # fmt: skip
        if self._on_swap is not None:
            self._on_swap(current, new)
        return True

    def start_following(self) -> None:
        if self.poll_seconds <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._follow, name="model-watcher", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except NoModelAvailableError:
                pass  # still nothing deployed: not an error, just not ready
            except Exception as err:  # a bad new version must not take the server down
                message = f"{type(err).__name__}: {err}"
                if message != self.last_error:  # log each distinct failure once, not every poll
                    log.exception("model refresh from %s failed", self.source.description)
                self.last_error = message

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

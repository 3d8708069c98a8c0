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

from attrition_mlops.registry.connection import TrackingServerUnreachableError
from attrition_mlops.serving.loaded import LoadedModel
from attrition_mlops.serving.sources import ModelSource, NoModelAvailableError

log = logging.getLogger(__name__)
#: How often a failed first load is retried when ``poll_seconds`` is 0 (never check again).
FIRST_LOAD_RETRY_SECONDS = 5.0


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
        self._reported: str | None = None  # the last problem logged

    @property
    def model(self) -> LoadedModel | None:
        """The current model (None until one is loaded). Read it once per request."""
        return self._model

    def load_initial(self, *, fail_fast: bool) -> None:
        """First load.

        ``fail_fast`` (a baked model directory: what cannot load now never will): load here and
        raise on failure, so the process does not start. Otherwise (a registry, which may be
        empty, down or unreachable for a while): start the watcher thread, which loads in the
        background and retries until a load succeeds, and return at once. Start-up never waits
        on the network: the API is live (not ready) immediately and SIGTERM works at any time.
        """
        if fail_fast:
            self.refresh()
        else:
            self._start_watcher()

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
        self.last_error = self._reported = None
        log.info(
            "serving %s version %s (was %s)",
            new.card.name,
            new.card.version,
            current.card.version if current else "none",
        )
        if self._on_swap is not None:
            self._on_swap(current, new)
        return True

    def start_following(self) -> None:
        """Check the source every ``poll_seconds`` from now on (0: never)."""
        if self.poll_seconds > 0:
            self._start_watcher()

    def _start_watcher(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="model-watcher", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        wait = 0.0 if self._model is None else self.poll_seconds  # no model yet: load at once
        while not self._stop.wait(wait):
            self._check()
            if self._model is None:  # keep trying until there is something to serve
                wait = self.poll_seconds or FIRST_LOAD_RETRY_SECONDS
            elif self.poll_seconds > 0:
                wait = self.poll_seconds
            else:
                return  # loaded, and told never to check again

    def _check(self) -> None:
        try:
            self.refresh()
        except NoModelAvailableError as err:  # nothing deployed yet: not an error, not ready
            self._report(err, logging.WARNING)
        except TrackingServerUnreachableError as err:  # the message says it all: no traceback
            self.last_error = f"{type(err).__name__}: {err}"
            self._report(err, logging.ERROR)
        except Exception as err:  # a bad new version must not take the server down
            self.last_error = f"{type(err).__name__}: {err}"
            self._report(err, logging.ERROR, traceback=True)

    def _report(self, err: Exception, level: int, *, traceback: bool = False) -> None:
        """Log each distinct problem once, not on every poll, with what is served meanwhile."""
        message = f"{type(err).__name__}: {err}"
        if message == self._reported:
            return
        self._reported = message
        current = self._model
        state = f"still serving version {current.card.version}" if current else "not ready"
        if traceback:
            text, args = "model refresh from %s failed (%s)", (self.source.description, state)
        else:
            retry = self.poll_seconds or FIRST_LOAD_RETRY_SECONDS
            text, args = "%s [%s; checking again every %g s]", (err, state, retry)
        log.log(level, text, *args, exc_info=err if traceback else None)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the watcher, waiting only briefly: one stuck in a network call (bounded by the
        MLflow timeouts) is a daemon thread and must not hold up shutdown."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("model watcher busy with %s; not waiting", self.source.description)
            self._thread = None

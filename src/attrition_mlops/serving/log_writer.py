"""Background writer for the inference log: the request path only ever enqueues.

Pseudonymising, serialising and all I/O (stdout, export files) happen on one writer thread, so a
slow disk or a full pipe never adds latency to a prediction. Lines are flushed whenever the
queue runs dry and at least every ``flush_seconds``. ``close()`` drains the queue completely
before returning; the app calls it at lifespan exit, which uvicorn reaches only after draining
in-flight requests on SIGTERM, so a graceful shutdown loses nothing.

The queue is unbounded on purpose: the alternatives are blocking requests or dropping log lines.
Its depth is exported as a metric (``attrition_inference_log_pending``) to alert on a stuck disk.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from attrition_mlops.data.inference_log import Pseudonymiser, build_record, dump_line, export_file

log = logging.getLogger(__name__)
_STOP = object()


@dataclass(frozen=True)
class PendingEntry:
    timestamp: datetime
    request_id: str
    model_name: str
    model_version: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    latency_ms: float
    simulated: bool = False


class InferenceLogWriter:
    def __init__(
        self,
        *,
        pseudonymise: Pseudonymiser,
        export_dir: Path | None,
        stream: TextIO | None,
        flush_seconds: float = 1.0,
    ) -> None:
        self._pseudonymise = pseudonymise
        self.export_dir = export_dir
        self._stream = stream
        self._flush_seconds = flush_seconds
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._started = datetime.now(UTC)
        self._file: TextIO | None = None
        self._file_day = None
        self.written = 0
        self.failed = 0

    def start(self) -> None:
        """Start the writer thread; an export folder that cannot be written fails right here."""
        if self.export_dir is not None:
            try:
                self.export_dir.mkdir(parents=True, exist_ok=True)
                if not os.access(self.export_dir, os.W_OK):
                    raise PermissionError(13, "permission denied")
            except OSError as err:
                err_text = err.strerror or err
                raise RuntimeError(
                    f"inference log export folder {self.export_dir} is not writable ({err_text}); "
                    "set ATTRITION_SERVING_LOG_EXPORT_DIR to a writable folder, or "
                    "ATTRITION_SERVING_LOG_EXPORT=false to log to stdout only"
                ) from err
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
            self._thread.start()

    def submit(self, entry: PendingEntry) -> None:
        """Never blocks: the entry is written by the writer thread."""
        self._queue.put(entry)

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, timeout: float | None = None) -> None:
        """Write everything submitted so far, flush, close the files."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("inference log writer did not finish within %ss", timeout)
        self._thread = None

    def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=self._flush_seconds)
            except queue.Empty:
                item = None
            if item is _STOP:
                break
            if item is not None:
                self._write(item)
            if self._queue.empty() or time.monotonic() - last_flush >= self._flush_seconds:
                self._flush()
                last_flush = time.monotonic()
        while True:  # anything that slipped in after the stop marker
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                self._write(item)
        self._flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, entry: PendingEntry) -> None:
        try:
            line = dump_line(
                build_record(
                    timestamp=entry.timestamp,
                    request_id=entry.request_id,
                    model_name=entry.model_name,
                    model_version=entry.model_version,
                    inputs=entry.inputs,
                    outputs=entry.outputs,
                    latency_ms=entry.latency_ms,
                    pseudonymise=self._pseudonymise,
                    simulated=entry.simulated,
                )
            )
            if self._stream is not None:
                self._stream.write(line + "\n")
            if self.export_dir is not None:
                self._export_handle(entry.timestamp).write(line + "\n")
            self.written += 1
        except Exception:  # keep writing later entries; the metric shows the loss
            self.failed += 1
            if self.failed == 1 or self.failed % 1000 == 0:  # a full disk must not flood logs
                log.exception("could not write inference log entry (%d so far)", self.failed)

    def _export_handle(self, timestamp: datetime) -> TextIO:
        day = timestamp.astimezone(UTC).date()
        if self._file is None or day != self._file_day:
            if self._file is not None:
                self._file.close()
            path = export_file(self.export_dir, day, self._pid, self._started)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
            self._file_day = day
        return self._file

    def _flush(self) -> None:
        for handle in (self._stream, self._file):
            if handle is not None:
                try:
                    handle.flush()
                except (OSError, ValueError):
                    log.exception("could not flush the inference log")

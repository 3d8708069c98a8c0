"""One writer per output partition: an OS file lock that a second run fails fast on.

The lock is ``fcntl.flock`` on a small file next to the partition's staging folder. The kernel
releases it when the holder's process ends, however it ends: a run killed with SIGKILL never
leaves a stale lock, so the next run simply takes it and resumes the staged parts. The file
holds the holder's pid, host, start time and run id (JSON), which a refused run quotes.

The holder removes the file when it is done (so nothing is left beside the partitions). A run
that opened the file just before that removal would lock a file no longer on disk; it checks,
after locking, that the path still names the file it locked, and starts again if not.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

#: File systems without flock (some network or FUSE mounts) answer with one of these.
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


class PartitionBusyError(RuntimeError):
    """Another run is writing the same output partition; this run changed nothing."""

    def __init__(self, partition: str, lock_path: Path, holder: dict | None) -> None:
        self.partition, self.lock_path, self.holder = partition, lock_path, holder
        super().__init__(
            f"partition {partition} is being written by another run ({describe(holder)}); this "
            f"run changed nothing. Wait for that run to finish, or stop it, then run again "
            f"(lock file: {lock_path})"
        )


class PartitionConflictError(RuntimeError):
    """The staged partition does not match this run's manifest: another writer got in."""


def describe(holder: dict | None) -> str:
    if not holder:
        return "holder not recorded yet: it took the lock a moment ago"
    keys = ("pid", "host", "started_at", "run_id")
    return ", ".join(f"{key} {holder[key]}" for key in keys if holder.get(key) is not None)


@contextmanager
def partition_lock(lock_path: Path, partition: str, run_id: str) -> Iterator[dict | None]:
    """Hold the partition's lock for the block, or raise PartitionBusyError at once.

    Yields the holder record written to the lock file, or None on a file system without
    locks, where the run goes ahead unlocked after a warning (docs/batch-scoring.md).
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(lock_path, partition)
    if fd is None:
        yield None
        return
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
    }
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield holder
    finally:
        # Remove before unlocking: whoever locks the old file after this sees it is gone.
        with suppress(FileNotFoundError):
            os.unlink(lock_path)
        os.close(fd)  # releases the lock


def _acquire(lock_path: Path, partition: str) -> int | None:
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            # A finished run removed the empty _staging folder after our mkdir: make it again.
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise PartitionBusyError(partition, lock_path, holder) from None
        except OSError as err:
            os.close(fd)
            if err.errno not in _UNSUPPORTED:
                raise
            log.warning(
                "%s: this file system does not support file locks (%s); runs for %s are not "
                "excluded here, only by the scheduler",
                lock_path,
                err.strerror,
                partition,
            )
            return None
        if _still_names(lock_path, fd):
            return fd
        os.close(fd)  # the previous holder removed it while we waited: lock the new file


def _still_names(path: Path, fd: int) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def _read_holder(fd: int) -> dict | None:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"null")
    except ValueError:  # being written this instant
        return None

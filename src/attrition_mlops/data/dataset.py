"""Reading data snapshots from disk: the bundled IBM HR file, or any CSV/Parquet a job is given.

Every way a file can be unusable (absent, a directory, empty, binary, badly encoded, malformed)
surfaces as a DataValidationError naming the path, never as a pandas traceback, so a failed
job's log says what to fix. Content checks are validation.validate_frame's job.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from attrition_mlops.data import contract
from attrition_mlops.data.validation import DataValidationError, Problem, validate_frame

BUNDLED_FILENAME = "ibm_hr_attrition.csv"
PARQUET_SUFFIXES = (".parquet", ".pq")
_CHUNK = 1 << 20
_SNIFF = 64 << 10  # enough to catch binary formats, which put NUL bytes in their first blocks


def bundled_dataset_path() -> Path:
    """The CSV shipped inside the package (a real file in a source tree or an installed wheel)."""
    resource = resources.files("attrition_mlops") / "data" / BUNDLED_FILENAME
    if not isinstance(resource, Path):  # e.g. zipimport, where there is no file to hand out
        raise RuntimeError(f"bundled data set is not on the file system: {resource}")
    return resource


def _read_bundled_sha256() -> str:
    text = (resources.files("attrition_mlops") / "data" / f"{BUNDLED_FILENAME}.sha256").read_text()
    return text.split()[0].lower()


#: Expected checksum of the bundled CSV, from the ``.sha256`` file shipped next to it.
BUNDLED_SHA256 = _read_bundled_sha256()


def file_sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks so large files never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_table(path: Path | str) -> pd.DataFrame:
    """Read a CSV (every cell as raw text) or Parquet file (by suffix) without interpreting it.

    CSV cells stay exactly as written ("NA" is the text NA, a blank cell is ""), so validation
    can name the offending cell instead of guessing what a reader turned it into.
    """
    path = Path(path)
    _check_readable(path)
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        return _read_csv(path)
    except UnicodeDecodeError:
        reason = _locate_encoding_error(path)
    except pd.errors.ParserWarning:
        reason = "malformed CSV: a data row has more fields than the header"
    except pd.errors.EmptyDataError:
        reason = "no header row (the file holds only blank lines)"
    except pd.errors.ParserError as err:
        reason = f"malformed CSV: {_first_line(err)}"
    except (pa.ArrowException, OSError, ValueError) as err:
        reason = f"not a readable {path.suffix.lstrip('.') or 'data'} file: {_first_line(err)}"
    raise _file_error(path, reason)


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise _file_error(path, "file not found")
    if path.is_dir():
        raise _file_error(path, "is a directory, not a file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF)
    except OSError as err:
        raise _file_error(path, f"cannot be read: {err.strerror or err}") from err
    if not head:
        raise _file_error(path, "file is empty (0 bytes)")
    if b"\x00" in head and path.suffix.lower() not in PARQUET_SUFFIXES:
        raise _file_error(path, "binary content (NUL bytes), not CSV text")


def _read_csv(path: Path) -> pd.DataFrame:
    with warnings.catch_warnings():
        # With index_col=False pandas only *warns* when rows are longer than the header, then
        # drops the surplus fields; escalate so that shifted data can never pass silently.
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            index_col=False,
            encoding="utf-8-sig",  # tolerate the byte-order mark spreadsheet exports add
        )


def _locate_encoding_error(path: Path) -> str:
    # pandas reports offsets within its internal buffer; find the real line (error path only).
    # Splitting on b"\n" is safe: that byte never occurs inside a multi-byte UTF-8 sequence.
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                where = f"byte 0x{line[err.start]:02x} on line {number}, column {err.start + 1}"
                return f"not UTF-8 text ({where}); re-save the file as UTF-8"
    return "not UTF-8 text; re-save the file as UTF-8"


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _file_error(path: Path, reason: str) -> DataValidationError:
    return DataValidationError([Problem(None, f"{path}: {reason}")])


@dataclass(frozen=True)
class Snapshot:
    """A validated data set and the facts a run records about it."""

    frame: pd.DataFrame
    path: Path
    sha256: str
    n_rows: int
    label_counts: dict[str, int]

    def summary(self) -> dict[str, object]:
        """Small and JSON-able: what a job prints and a DAG task passes on."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "rows": self.n_rows,
            "label_counts": dict(self.label_counts),
        }


def load_snapshot(path: Path | str | None = None, *, require_label: bool = True) -> Snapshot:
    """Read and validate a data set; None means the bundled one, checked against its checksum."""
    bundled = path is None
    path = bundled_dataset_path() if path is None else Path(path)
    _check_readable(path)
    sha256 = file_sha256(path)
    if bundled and sha256 != BUNDLED_SHA256:
        reason = (
            f"the shipped data set is corrupt: sha256 {sha256} does not match the expected "
            f"{BUNDLED_SHA256}; reinstall the package or restore the file from git"
        )
        raise _file_error(path, reason)
    raw = read_table(path)
    try:
        frame = validate_frame(raw, require_label=require_label)
    except DataValidationError as err:
        raise DataValidationError(err.problems, source=str(path)) from None
    counts: dict[str, int] = {}
    if contract.LABEL in frame:
        observed = frame[contract.LABEL].value_counts()
        counts = {value: int(observed.get(value, 0)) for value in contract.LABEL_VALUES}
    return Snapshot(frame, path, sha256, len(frame), counts)


def labels(frame: pd.DataFrame) -> np.ndarray:
    """The label column as 0/1 (1 = the contract's positive label)."""
    return (frame[contract.LABEL] == contract.POSITIVE_LABEL).to_numpy(dtype=int)

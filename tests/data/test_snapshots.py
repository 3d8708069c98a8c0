"""Labelled snapshots: arrival and validation, immutability, idempotent re-add, tamper detection,
latest/named selection, and the bundled data as the first snapshot."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from support import load_script

from attrition_mlops import cli
from attrition_mlops.data import contract, snapshots
from attrition_mlops.data.dataset import BUNDLED_SHA256, bundled_dataset_path, file_sha256
from attrition_mlops.data.snapshots import (
    BUNDLED_AS_OF,
    SnapshotConflictError,
    SnapshotError,
    SnapshotIntegrityError,
    add_snapshot,
    ensure_bundled_snapshot,
    latest_snapshot,
    list_snapshots,
    load_snapshot_partition,
    select_snapshot,
)
from attrition_mlops.data.validation import DataValidationError

DAY = date(2026, 11, 30)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "snapshots"


@pytest.fixture
def rows(snapshot) -> pd.DataFrame:
    """400 real rows, typed (a frame the way a producer would hand it over)."""
    return snapshot.frame.iloc[:400].copy()


def _partition_contents(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_a_valid_file_arrives_as_a_dated_partition_with_its_manifest(root, rows, tmp_path):
    csv = tmp_path / "incoming.csv"
    rows.to_csv(csv, index=False)
    result = add_snapshot(csv, DAY, source="HR export", root=root)
    assert result.added and result.path == root / "as_of=2026-11-30"
    assert _partition_contents(root) == [
        "as_of=2026-11-30",
        "as_of=2026-11-30/data.parquet",
        "as_of=2026-11-30/manifest.json",
    ]
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["as_of"] == "2026-11-30" and manifest["source"] == "HR export"
    assert manifest["rows"] == 400
    assert manifest["positives"] == int((rows[contract.LABEL] == "Yes").sum())
    assert manifest["sha256"] == file_sha256(result.path / "data.parquet")
    assert manifest["created_at"].endswith("+00:00")
    stored = pd.read_parquet(result.path / "data.parquet")
    assert list(stored.columns) == list(contract.DATASET_COLUMNS) and len(stored) == 400


def test_an_invalid_snapshot_is_refused_whole_and_nothing_is_written(root, rows):
    bad = rows.astype({"Age": "object"})
    bad.loc[bad.index[3], "Age"] = "forty"
    bad.loc[bad.index[7], "Department"] = "Marketing"
    with pytest.raises(DataValidationError) as caught:
        add_snapshot(bad, DAY, source="HR export", root=root)
    message = str(caught.value)
    assert "Age: 1 row not a whole number (row 4; value 'forty')" in message
    assert "Department" in message and "Marketing" in message
    assert _partition_contents(root) == []  # no partition, no temporary folder


def test_a_snapshot_without_labels_or_with_one_class_is_refused(root, rows):
    with pytest.raises(DataValidationError, match="missing required columns: Attrition"):
        add_snapshot(rows.drop(columns=[contract.LABEL]), DAY, source="x", root=root)
    leavers_only = rows[rows[contract.LABEL] == "Yes"]
    with pytest.raises(DataValidationError, match=r"needs both classes; no row has Attrition"):
        add_snapshot(leavers_only, DAY, source="x", root=root)
    assert _partition_contents(root) == []


def test_an_as_of_is_immutable_and_re_adding_identical_rows_is_a_no_op(root, rows):
    first = add_snapshot(rows, DAY, source="HR export", root=root)
    before = (first.path / "data.parquet").read_bytes()
    # The same rows in another order, from another file format: identical content.
    again = add_snapshot(rows.iloc[::-1], DAY, source="a second delivery", root=root)
    assert not again.added and again.manifest == first.manifest  # the first source is kept
    changed = rows.copy()
    changed.loc[changed.index[0], "MonthlyIncome"] += 1
    with pytest.raises(SnapshotConflictError, match="as_of=2026-11-30 already exists"):
        add_snapshot(changed, DAY, source="HR export", root=root)
    assert (first.path / "data.parquet").read_bytes() == before
    assert [m.as_of for m in list_snapshots(root)] == ["2026-11-30"]


def test_a_failed_write_leaves_no_partition(root, rows, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)
    with pytest.raises(OSError, match="No space left"):
        add_snapshot(rows, DAY, source="x", root=root)
    assert _partition_contents(root) == []


def test_a_writer_that_loses_the_rename_race_finds_the_winners_partition(root, rows, monkeypatch):
    winner = rows.copy()
    winner.loc[winner.index[0], "MonthlyIncome"] += 1
    real_rename = os.rename

    def racing_rename(src, dst):  # another writer lands the same as_of first
        monkeypatch.setattr(snapshots.os, "rename", real_rename)
        add_snapshot(winner, DAY, source="the other writer", root=root)
        return real_rename(src, dst)

    monkeypatch.setattr(snapshots.os, "rename", racing_rename)
    with pytest.raises(SnapshotConflictError):
        add_snapshot(rows, DAY, source="me", root=root)
    assert list_snapshots(root)[0].source == "the other writer"
    assert _partition_contents(root) == [
        "as_of=2026-11-30",
        "as_of=2026-11-30/data.parquet",
        "as_of=2026-11-30/manifest.json",
    ]


def test_loading_verifies_the_data_file_against_the_manifest(root, rows):
    path = add_snapshot(rows, DAY, source="x", root=root).path
    loaded = load_snapshot_partition(DAY, root)
    assert loaded.snapshot.n_rows == 400 and loaded.snapshot.sha256 == loaded.manifest.sha256
    assert loaded.snapshot.frame.equals(rows.reset_index(drop=True))

    data = path / "data.parquet"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # half-written
    with pytest.raises(SnapshotIntegrityError, match="does not match the manifest"):
        load_snapshot_partition(DAY, root)
    data.unlink()
    with pytest.raises(SnapshotIntegrityError, match="sha256 missing"):
        load_snapshot_partition(DAY, root)


def test_a_partition_without_a_manifest_is_an_error_not_skipped(root, rows):
    add_snapshot(rows, DAY, source="x", root=root)
    (root / "as_of=2026-12-01").mkdir()
    with pytest.raises(SnapshotError, match=r"as_of=2026-12-01: no manifest.json"):
        list_snapshots(root)


def test_the_bundled_data_is_the_first_snapshot_created_on_first_use(root):
    assert list_snapshots(root) == [] and latest_snapshot(root) is None
    manifest = ensure_bundled_snapshot(root)
    assert manifest.as_of == BUNDLED_AS_OF.isoformat() == "2017-03-31"
    assert manifest.source == "IBM HR Attrition (bundled)"
    assert (manifest.rows, manifest.positives) == (1470, 237)
    assert manifest.content_sha256 == BUNDLED_SHA256  # the same rows as the shipped CSV
    assert ensure_bundled_snapshot(root) == manifest  # once only
    # Re-adding the bundled CSV under its date is the no-op, not a conflict.
    assert not add_snapshot(bundled_dataset_path(), BUNDLED_AS_OF, source="y", root=root).added


def test_select_takes_the_latest_or_the_named_snapshot(root, rows):
    assert select_snapshot(root).manifest.as_of == "2017-03-31"  # only the bundled one
    add_snapshot(rows, date(2026, 12, 1), source="later", root=root)
    add_snapshot(rows.iloc[:200], DAY, source="earlier, added after", root=root)
    assert [m.as_of for m in list_snapshots(root)] == ["2017-03-31", "2026-11-30", "2026-12-01"]
    latest = select_snapshot(root)
    assert latest.manifest.as_of == "2026-12-01" and latest.snapshot.n_rows == 400
    named = select_snapshot(root, DAY)
    assert named.manifest.source == "earlier, added after" and named.snapshot.n_rows == 200
    with pytest.raises(SnapshotError, match=r"no snapshot as_of=2026-01-01 .*2017-03-31, 2026-11"):
        select_snapshot(root, date(2026, 1, 1))


def _load_job(name: str):
    return load_script(f"jobs/{name}.py", f"{name}_job")


def test_cli_adds_and_lists_snapshots_in_the_state_folder(state_dir, rows, tmp_path, capsys):
    csv = tmp_path / "labels-2026-11.csv"
    rows.to_csv(csv, index=False)
    assert cli.main(["snapshot", "add", str(csv), "--as-of", "2026-11-30"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["added"] is True and added["source"] == str(csv.resolve())
    assert added["path"] == str(state_dir / "snapshots" / "as_of=2026-11-30")
    assert cli.main(["snapshot", "add", str(csv), "--as-of", "2026-11-30", "--source", "x"]) == 0
    assert "already holds these rows: nothing written" in capsys.readouterr().out

    assert cli.main(["snapshot", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(m["as_of"], m["rows"]) for m in listed] == [("2017-03-31", 1470), ("2026-11-30", 400)]

    rows.drop(columns=["Age"]).to_csv(csv, index=False)
    assert cli.main(["snapshot", "add", str(csv), "--as-of", "2026-12-01"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attrition snapshot add: 1 problem in ") and "Age" in err
    rows.iloc[:10].to_csv(csv, index=False)
    assert cli.main(["snapshot", "add", str(csv), "--as-of", "2026-11-30"]) == 2
    assert "snapshots are immutable" in capsys.readouterr().err
    assert [m.as_of for m in list_snapshots(state_dir / "snapshots")] == [
        "2017-03-31",
        "2026-11-30",
    ]


def test_add_snapshot_job_reports_a_re_delivery_as_skipped(state_dir, rows, tmp_path, capsys):
    job = _load_job("add_snapshot")
    parquet = tmp_path / "labels.parquet"
    rows.to_parquet(parquet)
    argv = [str(parquet), "--as-of", "2026-11-30", "--source", "HR export"]
    assert job.main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["added"] is True and "skipped" not in first and first["rows"] == 400
    assert job.main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert (
        again["skipped"] is True and again["reason"] == "as_of=2026-11-30 already holds these rows"
    )
    rows.iloc[:50].to_parquet(parquet)
    assert job.main(argv) == 2  # an expected failure: one clear line, no traceback
    assert capsys.readouterr().err.startswith("SnapshotConflictError: snapshot as_of=2026-11-30")

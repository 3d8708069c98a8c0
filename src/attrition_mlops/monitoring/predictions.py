"""Read the batch scorer's published predictions for the performance step.

The layout is the scorer's contract with its consumers (docs/batch-scoring.md):
``<root>/run_date=YYYY-MM-DD/part-*.parquet``, each part holding a ``run_date`` column too. A
partition is published by renaming a finished folder, so every ``run_date=`` folder is complete;
``_staging`` and ``_rejects`` are skipped. Reading the root as one hive-partitioned data set does
not work (the folder key and the column named ``run_date`` clash), hence this reader.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from attrition_mlops.data import contract

PARTITION = "run_date"
COLUMNS = (contract.ID_COLUMN, "probability", "model_version", PARTITION)
EMPTY = pa.schema(
    [
        (contract.ID_COLUMN, pa.int64()),
        ("probability", pa.float64()),
        ("model_version", pa.large_string()),
        (PARTITION, pa.large_string()),
    ]
)


def read_batch_predictions(
    root: Path, *, since: date | None = None, until: date | None = None
) -> pd.DataFrame:
    """The columns the join needs from every published partition with ``since <= run_date <=
    until`` (either bound optional), oldest first."""
    tables = []
    for folder in sorted(root.glob(f"{PARTITION}=*")):
        try:
            day = date.fromisoformat(folder.name.removeprefix(f"{PARTITION}="))
        except ValueError:
            continue  # not a partition the scorer wrote
        if (since is not None and day < since) or (until is not None and day > until):
            continue
        for part in sorted(folder.glob("part-*.parquet")):
            tables.append(pq.read_table(part, columns=list(COLUMNS)))
    if not tables:
        return EMPTY.empty_table().to_pandas()
    return pa.concat_tables(tables).to_pandas()

"""The Databricks batch path, run here: the registered pyfunc as a Spark UDF on a local Spark.

The snippet in docs/batch-scoring.md ("On Databricks") is executed as written on a ``local[2]``
SparkSession (pyspark from the ``spark`` dependency group, Java 17), against a model that the real
training code registered. Its predictions for all 1,470 real rows must equal those of the batch
job (``score_snapshot``, what ``jobs/score.py`` runs) and of the pyfunc loaded in-process.

Nothing here is skipped: without pyspark or Java the test fails, as any missing dependency would.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import date

import mlflow
import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest
from support import REPO

from attrition_mlops import registry
from attrition_mlops.data import contract
from attrition_mlops.data.dataset import bundled_dataset_path
from attrition_mlops.model.predictor import load_predictor
from attrition_mlops.scoring.batch import score_snapshot
from attrition_mlops.settings import get_settings, get_training_settings
from attrition_mlops.training.train import train_model

pytestmark = [
    pytest.mark.integration,
    # pyspark 4.3 warns on every pandas conversion that it "does not yet fully support pandas >=
    # 3.0.0", and calls astype(copy=...), deprecated in pandas 3. The assertions below are what
    # tell whether it works with our pandas; docs/batch-scoring.md records the warning.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

NAME = "employee_attrition"
DAY = date(2026, 11, 20)
ID = contract.ID_COLUMN


def doc_snippet() -> str:
    """The Python block of the "On Databricks" section of docs/batch-scoring.md."""
    text = (REPO / "docs" / "batch-scoring.md").read_text()
    section = text.split("\n## On Databricks\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1 and "mlflow.pyfunc.spark_udf(" in blocks[0], section
    return blocks[0]


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from pyspark.sql import SparkSession

    tmp = tmp_path_factory.mktemp("spark")
    with pytest.MonkeyPatch.context() as env:
        # Python workers run PYSPARK_PYTHON, by default whatever `python3` is on PATH: this venv's
        # interpreter is the one that can import pandas, mlflow and attrition_mlops.
        env.setenv("PYSPARK_PYTHON", sys.executable)
        session = (
            SparkSession.builder.master("local[2]")
            .appName("attrition-spark-udf-test")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.memory", "1g")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.sql.warehouse.dir", str(tmp / "warehouse"))
            .config("spark.local.dir", str(tmp / "local"))
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        try:
            yield session
        finally:
            session.stop()
            # py4j's client connections log "Closing down" from __del__ at interpreter exit,
            # after pytest has closed the stream the handler writes to: keep that quiet.
            logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture
def champion(mlflow_store, snapshot, monkeypatch) -> str:
    """A model trained and registered by the real training code (small search), as champion."""
    monkeypatch.setenv("ATTRITION_TRAIN_N_TRIALS", "2")
    monkeypatch.setenv("ATTRITION_TRAIN_CV_FOLDS", "3")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    get_training_settings.cache_clear()
    trained = train_model(
        snapshot, run_key="spark-udf", settings=get_settings(), cfg=get_training_settings()
    )
    registry.move_alias(
        NAME, registry.CHAMPION, trained.version, expected=None, actor="test", reason="spark udf"
    )
    return trained.version


def test_spark_udf_scores_like_the_batch_job(spark, champion, snapshot, tmp_path):
    frame = snapshot.frame  # the 34 inputs, the label and nothing else
    df = spark.createDataFrame(frame)
    assert df.rdd.getNumPartitions() == 2  # two tasks, two Python workers
    namespace = {"spark": spark, "df": df}
    exec(compile(doc_snippet(), "docs/batch-scoring.md", "exec"), namespace)
    spark_rows = namespace["scored"].select(ID, "prediction.*").toPandas().set_index(ID)

    inputs = frame[list(contract.INPUT_COLUMNS)]
    pyfunc = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(inputs)
    pyfunc.index = frame[ID]

    score_snapshot(
        bundled_dataset_path(),
        tmp_path / "out",
        DAY,
        load_predictor(f"models:/{NAME}/{champion}"),
        model_name=NAME,
        model_version=champion,
        progress=False,
    )
    partition = tmp_path / "out" / f"run_date={DAY.isoformat()}"
    job = pads.dataset(partition, format="parquet").to_table().to_pandas().set_index(ID)

    assert len(spark_rows) == len(frame) == 1470 and spark_rows.index.is_unique
    spark_rows = spark_rows.loc[frame[ID]]
    job = job.loc[frame[ID]]
    for expected in (pyfunc, job):
        diff = np.abs(spark_rows.probability.to_numpy() - expected.probability.to_numpy())
        assert diff.max() <= 1e-12
        assert (spark_rows.label.to_numpy() == expected.label.to_numpy()).all()
        assert (spark_rows.is_outlier.to_numpy() == expected.is_outlier.to_numpy()).all()
    np.testing.assert_allclose(spark_rows.outlier_score, pyfunc.outlier_score, rtol=1e-12)
    # Not a trivial agreement: both labels and both outlier verdicts occur.
    assert set(spark_rows.label) == {"No", "Yes"} and spark_rows.is_outlier.any()
    assert spark_rows.probability.dtype == np.float64
    assert pd.api.types.is_bool_dtype(spark_rows.is_outlier)

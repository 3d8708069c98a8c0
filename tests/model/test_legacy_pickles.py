"""Models registered before the stage packages still load: their pickles name the old modules.

Until the layout change the predictor's classes lived in ``attrition_mlops.model`` (a module)
and ``attrition_mlops.outliers``; a registered version's ``predictor.joblib`` and pyfunc pickle
name those paths. Here a predictor is pickled under the old names and loaded in a fresh
interpreter, as a serving process would load a version registered months ago.
"""

from __future__ import annotations

import subprocess
import sys

import joblib
import numpy as np
import pytest

from attrition_mlops.data import contract
from attrition_mlops.model import outliers
from attrition_mlops.model import predictor as predictor_module

OLD_PATHS = {
    predictor_module.AttritionPredictor: "attrition_mlops.model",
    outliers.OutlierDetector: "attrition_mlops.outliers",
    outliers.MahalanobisScorer: "attrition_mlops.outliers",
}


@pytest.fixture
def old_pickle(snapshot, predictor, tmp_path, monkeypatch):
    X = snapshot.frame[list(contract.INPUT_COLUMNS)]
    model = predictor
    for cls, old in OLD_PATHS.items():
        monkeypatch.setattr(cls, "__module__", old)
    path = tmp_path / "predictor.joblib"
    joblib.dump(model, path)
    raw = path.read_bytes()
    assert b"attrition_mlops.outliers" in raw and b"attrition_mlops.model.predictor" not in raw
    np.save(tmp_path / "expected.npy", model.predict_proba(X.head(50)))
    return path


@pytest.mark.integration  # starts a subprocess
def test_a_predictor_pickled_under_the_old_module_paths_loads_and_scores(old_pickle, snapshot):
    snapshot.frame.head(50).to_csv(old_pickle.parent / "rows.csv", index=False)
    script = (
        "import sys, joblib, numpy as np, pandas as pd\n"
        "from attrition_mlops.data import contract\n"
        "d = sys.argv[1]\n"
        "p = joblib.load(d + '/predictor.joblib')\n"
        "rows = pd.read_csv(d + '/rows.csv')[list(contract.INPUT_COLUMNS)]\n"
        "got = p.predict_proba(rows)\n"
        "assert type(p).__module__ == 'attrition_mlops.model.predictor', type(p).__module__\n"
        "assert type(p.detector).__module__ == 'attrition_mlops.model.outliers'\n"
        "np.testing.assert_allclose(got, np.load(d + '/expected.npy'), rtol=1e-12)\n"
        "print('loaded', len(got))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(old_pickle.parent)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "loaded 50"

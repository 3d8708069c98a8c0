"""The compiled model runtime: the fitted pipelines as plain numpy arithmetic, for serving and
batch scoring alike.

A one-record ``predict_proba`` through a sklearn Pipeline spends ~10 ms building a DataFrame and
walking the ColumnTransformer; the model's own arithmetic takes well under 1 ms. At load time
the fitted pipelines are compiled once:

- :mod:`.encoder`: the fitted ColumnTransformer as a :class:`CompiledEncoder`, fed records
  (:class:`RecordBatch`, serving) or whole columns (``encode_columns``, batch scoring);
- :mod:`.estimators`: the classifier, the outlier scorer and both together
  (:class:`CompiledModel`, one encoding when the two pipelines share it);
- :mod:`.check`: the one agreement rule with the sklearn pipeline and its tolerance;
- :mod:`.threads`: the per-thread native thread limit.

The same arithmetic in the same order: on the bundled data set the results equal the sklearn
pipeline's to rounding (docs/serving.md; tests assert < 1e-9 on all 1,470 rows). Anything the
compiler does not recognise raises :class:`UnsupportedPipelineError`; the caller then keeps the
sklearn path and logs a warning.
"""

from attrition_mlops.model.compiled.check import (
    SELF_CHECK_TOLERANCE,
    Scores,
    agrees,
    disagreement,
)
from attrition_mlops.model.compiled.encoder import (
    CompiledEncoder,
    RecordBatch,
    Records,
    UnsupportedPipelineError,
    compile_encoder,
)
from attrition_mlops.model.compiled.estimators import (
    CompiledClassifier,
    CompiledModel,
    CompiledScorer,
)
from attrition_mlops.model.compiled.threads import pin_native_threads

__all__ = [
    "SELF_CHECK_TOLERANCE",
    "CompiledClassifier",
    "CompiledEncoder",
    "CompiledModel",
    "CompiledScorer",
    "RecordBatch",
    "Records",
    "Scores",
    "UnsupportedPipelineError",
    "agrees",
    "compile_encoder",
    "disagreement",
    "pin_native_threads",
]

"""The model core: features, outlier detector, reference profile, predictor, compiled runtime."""

from typing import Any

# Models registered before the stage packages pickled ``attrition_mlops.model.AttritionPredictor``
# and ``...AttritionPyfunc`` (this package was then one module). Resolved lazily, so importing
# ``attrition_mlops.model.features`` does not import MLflow.
_PICKLED = ("AttritionPredictor", "AttritionPyfunc")


def __getattr__(name: str) -> Any:
    if name in _PICKLED:
        from attrition_mlops.model import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

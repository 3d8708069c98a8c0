"""Import paths from before the stage packages, kept so models registered then still load.

A registered version stores the predictor with joblib and the pyfunc wrapper with cloudpickle;
both name classes by the module they were defined in, and until version 0.2 those were the flat
modules ``attrition_mlops.model`` and ``attrition_mlops.outliers``. This finder answers an import
of an old module path with the module that holds its code now, so ``joblib.load`` and
``mlflow.pyfunc.load_model`` keep working on those versions. Nothing in the project imports the
old paths; a test pickles under them and loads the result.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

#: old module path -> where its pickled classes live now
MOVED = {
    "attrition_mlops.outliers": "attrition_mlops.model.outliers",
    "attrition_mlops.features": "attrition_mlops.model.features",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """The target module is already executed."""


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(MOVED[fullname]))


def install() -> None:
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())

"""attrition_mlops: the library behind the DAGs, jobs and serving app of the attrition pipeline."""

from attrition_mlops import _legacy

__version__ = "0.1.0"

_legacy.install()  # models registered before the stage packages name their old module paths

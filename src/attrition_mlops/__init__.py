"""attrition_mlops: the library behind the DAGs, jobs and serving app of the attrition pipeline."""

__version__ = "0.1.0"

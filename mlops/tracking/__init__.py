"""Experiment tracking: one MLflow run per pipeline execution, local or in SageMaker.

An execution (a local record, or a SageMaker pipeline execution) is first summarized into an
``ExecutionSummary`` (parameters, hyperparameters, metrics, tags, artifact files) with no MLflow
involved; ``log_execution`` then writes it as one run of the experiment named after the pipeline.
Logging is idempotent: an execution already logged is not logged twice, and a half-logged run
(a failure mid-way) is replaced.

Three modules: ``summary`` maps facts to a run and ranks runs (pure), ``sources`` gathers the
facts from a local run or from SageMaker and S3, ``client`` talks to MLflow (imported only
there, and only when used: it is slow). Their public names are re-exported here.

Tracking URI, first found wins: ``--tracking-uri``, ``MLFLOW_TRACKING_URI``, the stage's managed
tracking server (``mlflow.tracking_server`` in cdk.json; its ARN is the URI, which the
``sagemaker-mlflow`` plugin resolves and signs), then a SQLite store under ``MLOPS_HOME``
(MLflow 3's default backend; its file store is in maintenance mode and refuses new stores).
"""

from mlops.tracking.client import compare, import_in_background, list_experiments, log_execution
from mlops.tracking.sources import scratch_dir, stage_tracking_uri, summarize_cloud, summarize_local
from mlops.tracking.summary import (
    COMPLETE_TAG,
    EXECUTION_TAG,
    GATE_TAG,
    HYPERPARAMETER_PREFIX,
    PARENT_TAG,
    TRACKING_URI_ENV,
    Comparison,
    ExecutionSummary,
    ExperimentView,
    LoggedRun,
    RunView,
    TrackingError,
    local_tracking_uri,
    rank_runs,
    resolve_tracking_uri,
    summarize,
)

__all__ = [
    "COMPLETE_TAG",
    "EXECUTION_TAG",
    "GATE_TAG",
    "HYPERPARAMETER_PREFIX",
    "PARENT_TAG",
    "TRACKING_URI_ENV",
    "Comparison",
    "ExecutionSummary",
    "ExperimentView",
    "LoggedRun",
    "RunView",
    "TrackingError",
    "compare",
    "import_in_background",
    "list_experiments",
    "local_tracking_uri",
    "log_execution",
    "rank_runs",
    "resolve_tracking_uri",
    "scratch_dir",
    "stage_tracking_uri",
    "summarize",
    "summarize_cloud",
    "summarize_local",
]

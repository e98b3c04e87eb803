"""Experiment tracking's MLflow half: logging an ``ExecutionSummary`` as one run (with its
tuning trials nested), and reading runs and experiments back. MLflow is imported only here, and
only when used: it is slow."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError
from mlops.tracking.summary import (
    COMPLETE_TAG,
    EXECUTION_TAG,
    PARENT_TAG,
    RUN_STATUS,
    TRIAL_STATUS,
    Comparison,
    ExecutionSummary,
    ExperimentView,
    LoggedRun,
    ModelToLog,
    RunView,
    TrackingError,
    rank_runs,
    top_level,
)

log = logging.getLogger(__name__)


def import_in_background() -> threading.Thread:
    """Import MLflow's client and SQL store while the pipeline's jobs run (child processes, so
    this process is idle): it takes about 2.5 s, which a run would otherwise wait for at the end."""

    def load() -> None:
        with contextlib.suppress(ImportError):  # logging imports it again and reports a failure
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

    thread = threading.Thread(target=load, name="mlflow-import", daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def _tracking(uri: str, action: str) -> Iterator[Any]:
    """An MLflow client for ``uri``; any failure in the block becomes one TrackingError."""
    try:
        from mlflow import MlflowClient
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        # MLflow logs its schema migrations at INFO on first use of a store: not news here.
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # The sagemaker-mlflow plugin signs requests for the process-wide tracking URI, not the
        # client's: set it for the block (and restore it, with MLFLOW_TRACKING_URI, after).
        with _use_tracking_uri(uri):
            yield MlflowClient(tracking_uri=uri)
    except MlopsError:
        raise
    except Exception as exc:  # MLflow, SQLAlchemy, HTTP and AWS errors all land here, re-raised
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TrackingError(
            f"{action} at {uri} failed: {type(exc).__name__}: {detail[:500]}"
        ) from exc


def _experiment_id(client: Any, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"experiment {name!r} is deleted at {uri}: restore it (mlflow experiments restore) "
                "or pass another --experiment"
            )
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=_artifact_location(uri, name)))


def _artifact_location(uri: str, experiment: str) -> str | None:
    """Beside a SQLite store, its artifacts: ``<store folder>/artifacts/<experiment>`` (MLflow
    would use ./mlruns of whatever directory the command runs in). A server decides its own."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).resolve()
    return (database.parent / "artifacts" / experiment).as_uri()


def _runs_of(client: Any, experiment_id: str, execution_id: str) -> list[Any]:
    return list(
        client.search_runs(
            [experiment_id], filter_string=f"tags.`{EXECUTION_TAG}` = '{execution_id}'"
        )
    )


def log_execution(summary: ExecutionSummary, uri: str) -> LoggedRun:
    """Log one execution as one run; do nothing if it is already logged completely."""
    with _tracking(uri, f"logging execution {summary.execution_id}") as client:
        from mlflow.entities import Metric, Param

        experiment_id = _experiment_id(client, summary.experiment, uri)
        earlier = _runs_of(client, experiment_id, summary.execution_id)
        for run in earlier:
            if run.data.tags.get(COMPLETE_TAG) == "true":
                return LoggedRun(run.info.run_id, summary.experiment, uri, already_logged=True)
        for run in earlier:  # an attempt that failed half-way: start clean, trials too
            for trial in client.search_runs(
                [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{run.info.run_id}'"
            ):
                client.delete_run(trial.info.run_id)
            client.delete_run(run.info.run_id)
        run = client.create_run(
            experiment_id,
            start_time=summary.start_ms,
            tags=summary.tags,
            run_name=summary.execution_id,
        )
        run_id = run.info.run_id
        timestamp = summary.end_ms or summary.start_ms
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, timestamp, 0) for k, v in sorted(summary.metrics.items())],
            params=[Param(k, v) for k, v in sorted(summary.params.items())],
        )
        for path in summary.artifacts:
            client.log_artifact(run_id, str(path))
        for trial in summary.trials:
            nested = client.create_run(
                experiment_id,
                start_time=trial.start_ms,
                tags={**trial.tags, PARENT_TAG: run_id},
                run_name=trial.execution_id,
            ).info.run_id
            client.log_batch(
                nested,
                metrics=[
                    Metric(k, v, trial.end_ms or trial.start_ms, 0)
                    for k, v in trial.metrics.items()
                ],
                params=[Param(k, v) for k, v in sorted(trial.params.items())],
            )
            client.set_terminated(
                nested, TRIAL_STATUS.get(trial.status, "FAILED"), end_time=trial.end_ms
            )
        if summary.model is not None:
            _log_model(run_id, summary.model)
        client.set_tag(run_id, COMPLETE_TAG, "true")
        client.set_terminated(
            run_id, RUN_STATUS.get(summary.status, "FAILED"), end_time=summary.end_ms
        )
    return LoggedRun(run_id, summary.experiment, uri, replaced_partial=bool(earlier))


MODEL_NAME = "model"  # the logged model's name: runs:/<run id>/model
EXAMPLE_ROWS = 5


def _log_model(run_id: str, model: ModelToLog) -> None:
    """The trained pipeline as an MLflow scikit-learn model, with its signature and an input
    example from the test split, so ``mlflow.pyfunc.load_model("runs:/<id>/model")`` works.

    Its requirements are the library versions the Train job recorded in the manifest (MLflow
    would otherwise infer them by importing the model in a subprocess: seconds, and guesses).
    A model with date columns also needs this project's ``sagemaker_jobs`` importable: its
    date features are a function of that package."""
    import mlflow
    import mlflow.sklearn
    import skops
    import skops.io
    from mlflow.models import infer_signature

    from sagemaker_jobs import artifacts
    from sagemaker_jobs.data import Schema, read_split

    with tempfile.TemporaryDirectory(prefix="mlflow-model-") as scratch:
        fitted, manifest = artifacts.load(artifacts.unpack(model.archive, Path(scratch)))
    schema = Schema.from_dict(manifest)
    example = read_split(model.test_split, schema)[list(schema.features)].head(EXAMPLE_ROWS)
    libraries = manifest.get("libraries", {})
    requirements = [
        f"{name}=={libraries[name]}"
        for name in ("scikit-learn", "pandas", "numpy")
        if name in libraries
    ]
    # MLflow saves with skops, which loads only the types it is told to trust. These are the
    # types of our own Train job's pipeline (whose file's sha256 the manifest checked above).
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(fitted))
    # MLflow's advice while saving (type hints, integer columns, pandas deprecations) is about
    # its own inference, not the user's model: it goes to the debug log, not the terminal.
    with warnings.catch_warnings(record=True) as advice, mlflow.start_run(run_id=run_id):
        warnings.simplefilter("always")
        mlflow.sklearn.log_model(
            fitted,
            name=MODEL_NAME,
            signature=infer_signature(example, fitted.predict(example)),
            input_example=example,
            pip_requirements=[*requirements, f"skops=={skops.__version__}"],
            skops_trusted_types=trusted,
        )
    for warning in advice:
        log.debug("MLflow while logging the model: %s", warning.message)


def _view(run: Any) -> RunView:
    return RunView(
        run_id=run.info.run_id,
        name=run.info.run_name or run.info.run_id,
        status=run.info.status,
        start_ms=int(run.info.start_time or 0),
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        tags=dict(run.data.tags),
    )


def _all_runs(client: Any, experiment_id: str) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], max_results=1000, order_by=["start_time DESC"], page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def compare(uri: str, experiment: str, metric: str | None = None, top: int = 5) -> Comparison:
    """The experiment's best runs by ``metric`` (default: the runs' quality-gate metric)."""
    with _tracking(uri, f"reading experiment {experiment!r}") as client:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            names = sorted(e.name for e in client.search_experiments())
            raise TrackingError(
                f"no experiment {experiment!r} at {uri}"
                + (f"; it has {', '.join(names)}" if names else "; run `mlops pipeline run` first")
            )
        runs = [_view(r) for r in _all_runs(client, str(found.experiment_id))]
    return rank_runs(runs, experiment, metric, top)


def list_experiments(uri: str) -> list[ExperimentView]:
    with _tracking(uri, "listing experiments") as client:
        views = []
        for experiment in client.search_experiments():
            runs = [
                r
                for r in _all_runs(client, str(experiment.experiment_id))
                if top_level(r.data.tags)
            ]
            views.append(
                ExperimentView(
                    str(experiment.experiment_id),
                    experiment.name,
                    len(runs),
                    max((int(r.info.start_time or 0) for r in runs), default=None),
                )
            )
    return sorted(views, key=lambda v: v.last_run_ms or 0, reverse=True)

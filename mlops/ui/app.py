"""The console's pages: each one reads through the functions the CLI commands use.

Bound to 127.0.0.1 by ``serve``; every form that changes something is a POST that carries the
process's CSRF token; Jinja escapes every value from data or users; an error page never shows a
stack trace (the log has it).
"""

from __future__ import annotations

import json
import logging
import math
import random
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from mlops.errors import MlopsError, NotFound
from mlops.home import Home

log = logging.getLogger(__name__)

PAGE_SIZE = 50
CAPTURED_SHOWN = 20
TEST_ROWS_KEPT = 1000  # the random-row button draws from these
STATUS_COLORS = {
    "Succeeded": "#d3f9d8",
    "Failed": "#ffe3e3",
    "Executing": "#fff3bf",
    "Stopped": "#ffe3e3",
    "NotStarted": "#f1f3f5",
}


@dataclass(frozen=True)
class Page:
    items: list[Any]
    number: int
    count: int
    total: int


def paginate(items: list[Any], page: int, size: int = PAGE_SIZE) -> Page:
    count = max(1, math.ceil(len(items) / size))
    number = min(max(1, page), count)
    return Page(items[(number - 1) * size : number * size], number, count, len(items))


def graph_svg(names: list[str], needs: dict[str, set[str]], status: dict[str, str]) -> str:
    """The step DAG as an SVG: steps in layers by their dependencies, colored by status."""
    import html

    layer: dict[str, int] = {}
    for name in names:  # names are in plan order: every dependency comes first
        layer[name] = 1 + max((layer[d] for d in needs.get(name, set()) if d in layer), default=-1)
    columns: dict[int, list[str]] = {}
    for name in names:
        columns.setdefault(layer[name], []).append(name)
    box_w, box_h, gap_x, gap_y = 150, 44, 40, 16
    where = {
        name: (x * (box_w + gap_x) + 10, y * (box_h + gap_y) + 10)
        for x, column in columns.items()
        for y, name in enumerate(column)
    }
    width = len(columns) * (box_w + gap_x) + 20
    height = max(len(c) for c in columns.values()) * (box_h + gap_y) + 20 if columns else 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">']
    for name in names:
        for dependency in needs.get(name, set()):
            if dependency in where:
                (x1, y1), (x2, y2) = where[dependency], where[name]
                parts.append(
                    f'<line x1="{x1 + box_w}" y1="{y1 + box_h / 2}" x2="{x2}" '
                    f'y2="{y2 + box_h / 2}" stroke="#829ab1"/>'
                )
    for name, (x, y) in where.items():
        state = status.get(name, "NotStarted")
        fill = STATUS_COLORS.get(state, "#f1f3f5")
        parts.append(
            f'<g class="step" data-step="{html.escape(name, quote=True)}" '
            f'data-status="{html.escape(state, quote=True)}">'
            f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="6" fill="{fill}" '
            f'stroke="#486581"/><text x="{x + 8}" y="{y + 18}" font-size="13">'
            f"{html.escape(name)}</text>"
            f'<text x="{x + 8}" y="{y + 35}" font-size="11">{html.escape(state)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _seconds(start: str | None, end: str | None) -> str:
    from datetime import datetime

    if not start or not end:
        return ""
    return f"{(datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds():.2f}"


class Console:
    """The state behind the pages: the home, its registry and endpoints, and the CSRF token."""

    def __init__(self, home: Home, mlflow_url: str | None = None) -> None:
        from mlops.endpoints import LocalEndpoints
        from mlops.registry.local import LocalModelRegistry
        from mlops.store import LocalObjectStore

        self.home = home
        self.store = LocalObjectStore(home.store)
        self.registry = LocalModelRegistry(home.registry, self.store)
        self.endpoints = LocalEndpoints(home, self.registry)
        self.mlflow_url = mlflow_url
        self.csrf = secrets.token_urlsafe(32)
        self.confirm: str | None = None  # what a decision's checkbox must say, when it needs one
        self._fields: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._test_rows: dict[tuple[str, int], Any] = {}
        self.templates = Environment(
            loader=PackageLoader("mlops.ui", "templates"),
            autoescape=select_autoescape(["html"]),
        )
        self.templates.filters["basename"] = lambda uri: str(uri).rstrip("/").rsplit("/", 1)[-1]
        self.templates.filters["urlencode"] = lambda value: quote(str(value), safe="")
        self.templates.globals["where"] = f"local home {home.root}"

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        page = self.templates.get_template(template).render(**context)
        return HTMLResponse(page, status_code=status)

    # Pages ------------------------------------------------------------------------------------
    def projects(self, request: Request) -> Response:
        from mlops.executor.records import list_executions

        executions = list_executions(self.home.runs)
        names = sorted({r.pipeline_name for r in executions} | set(self.registry.list_groups()))
        projects = [
            {
                "name": name,
                "executions": sum(r.pipeline_name == name for r in executions),
                "versions": len(self.registry.list_model_packages(name))
                if name in self.registry.list_groups()
                else 0,
            }
            for name in names
        ]
        return self.render("projects.html", title="Projects", projects=projects)

    def executions(self, request: Request) -> Response:
        from mlops.executor.records import list_executions

        project = request.path_params["project"]
        rows = [
            {
                "execution_id": r.execution_id,
                "status": r.status,
                "started": r.start_time,
                "dataset": str(r.parameters.get("InputDataUri", "")).rstrip("/").rsplit("/", 1)[-1],
                "target": r.parameters.get("TargetColumn", ""),
                "failure": r.failure_reason,
            }
            for r in list_executions(self.home.runs, project)
        ]
        page = paginate(rows, _page(request))
        return self.render("executions.html", title=f"{project}: executions", page=page)

    def execution(self, request: Request) -> Response:
        from mlops.commands.views import dependencies
        from mlops.executor.records import find_execution

        record = find_execution(self.home.runs, request.path_params["execution"])
        needs = dependencies(record)
        names = list(needs) + [s.name for s in record.steps if s.name not in needs]
        status = {s.name: s.status for s in record.steps}
        steps = [
            {
                "name": s.name,
                "type": s.type,
                "status": s.status,
                "seconds": _seconds(s.start_time, s.end_time),
                "cache": f"hit: {s.cache_hit}" if s.cache_hit else "",
                "failure": s.failure_reason,
                "log": s.log_file,
            }
            for s in record.steps
        ]
        return self.render(
            "execution.html",
            title=f"Execution {record.execution_id}",
            record=record,
            steps=steps,
            graph=graph_svg(names, needs, status),
            eda=self._eda(record) is not None,
        )

    def _eda(self, record: Any) -> Path | None:
        from sagemaker_jobs.eda import EDA_FILE

        for step in record.steps:
            if step.name == "Preprocess" and "profile" in step.outputs:
                path = self.store.path_for(str(step.outputs["profile"])) / EDA_FILE
                return path if path.is_file() else None
        return None

    def eda(self, request: Request) -> Response:
        from mlops.executor.records import find_execution

        path = self._eda(find_execution(self.home.runs, request.path_params["execution"]))
        if path is None:
            raise HTTPException(404, "this execution has no EDA report")
        return FileResponse(path, media_type="text/html")

    def step_log(self, request: Request) -> Response:
        from mlops.commands.views import step_log
        from mlops.executor.records import find_execution

        record = find_execution(self.home.runs, request.path_params["execution"])
        path = step_log(record, request.path_params["step"])
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        return self.render(
            "log.html", title=f"{record.execution_id} · {path.parent.name}", text=text
        )

    def versions(self, request: Request) -> Response:
        project = request.path_params["project"]
        packages = sorted(
            self.registry.list_model_packages(project), key=lambda p: p.version, reverse=True
        )
        page = paginate(packages, _page(request))
        return self.render(
            "versions.html", title=f"{project}: model versions", page=page, project=project
        )

    def _version_package(self, request: Request) -> tuple[str, Any]:
        """The page's project and the version it names (a project's group carries its name)."""
        project = request.path_params["project"]
        package = self.registry.describe_model_package(project, int(request.path_params["version"]))
        return project, package

    def version(self, request: Request) -> Response:
        from sagemaker_jobs.metric_directions import higher_is_better

        project, package = self._version_package(request)
        values = package.metrics.get("metrics", {})
        metrics = [
            {
                "name": name,
                "value": entry.get("value") if isinstance(entry, dict) else entry,
                "direction": "higher is better" if higher_is_better(name) else "lower is better",
            }
            for name, entry in values.items()
        ]
        return self.render(
            "version.html",
            title=f"{project} version {package.version}",
            project=project,
            package=package,
            metrics=metrics,
            gate=package.metrics.get("quality_gate", {}).get("message", ""),
            csrf=self.csrf,
            report=self._has_report(package),
            card=self._card(package),
            lineage=self._lineage(package),
            confirm=self.confirm,
        )

    def _has_report(self, package: Any) -> bool:
        return self._report(package) is not None

    def _card(self, package: Any) -> str:
        from mlops.model_card.files import CARD_MARKDOWN

        return _read(self._version_dir(package) / CARD_MARKDOWN)

    def _lineage(self, package: Any) -> list[str]:
        """`mlops lineage VERSION`'s walk (data -> steps -> package -> endpoints), or why not."""
        from mlops.lineage import local_lineage

        try:
            return local_lineage(self.home, package.group, package.version).lines()
        except MlopsError as exc:
            return [f"no lineage: {exc}"]

    def _version_dir(self, package: Any) -> Path:
        """Where `pipeline run` and `mlops models report|card` write a version's files."""
        return self.home.root / "models" / "local" / package.group / str(package.version)

    def _report(self, package: Any) -> Path | None:
        from mlops.model_card.files import REPORT_FILE

        path = self._version_dir(package) / REPORT_FILE
        return path if path.is_file() else None

    def report(self, request: Request) -> Response:
        _, package = self._version_package(request)
        path = self._report(package)
        if path is None:
            raise HTTPException(404, "this version has no report yet: mlops models report")
        return FileResponse(path, media_type="text/html")

    async def decide(self, request: Request) -> Response:
        form = await _form(request)
        self._check_csrf(form.get("csrf"))
        project, package = self._version_package(request)
        status = {"approve": "Approved", "reject": "Rejected"}.get(request.path_params["action"])
        if status is None:
            raise HTTPException(404, "a version can be approved or rejected, nothing else")
        if self.confirm and form.get("confirm") != "yes":
            raise MlopsError(f"nothing changed: tick the box that says '{self.confirm}'")
        description = str(form.get("description", "")).strip()
        if not description:
            raise MlopsError("say who decides and why: the description is required")
        self.registry.update_approval_status(package.group, package.version, status, description)
        return RedirectResponse(
            f"/projects/{quote(project)}/versions/{package.version}", status_code=303
        )

    def endpoints_page(self, request: Request) -> Response:
        return self.render("endpoints.html", title="Endpoints", endpoints=self.endpoints.list())

    def endpoint(self, request: Request, **extra: Any) -> Response:
        record = self.endpoints.describe(request.path_params["name"])
        features = self._features(record)
        context: dict[str, Any] = {
            "values": {},
            "error": None,
            "error_field": None,
            "prediction": None,
            "probabilities": None,
        }
        context.update(extra)
        return self.render(
            "endpoint.html",
            status=context.pop("status", 200),
            title=f"Endpoint {record.name}",
            endpoint=record,
            features=features,
            csrf=self.csrf,
            captures=self._captures(record),
            drift=self._drift(record.name),
            **context,
        )

    def _drift_report(self, name: str) -> Path | None:
        """The newest report `mlops monitor drift --endpoint NAME` wrote (its default folder)."""
        reports = sorted((self.home.root / "monitoring" / name).glob("*/drift-report.html"))
        return reports[-1] if reports else None

    def _drift(self, name: str) -> dict[str, Any] | None:
        report = self._drift_report(name)
        if report is None:
            return None
        violations = report.parent / "constraint_violations.json"
        try:
            found = json.loads(violations.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # the report stands; its violations file is unreadable
            found = {}
        return {
            "when": report.parent.name,
            "violations": sorted({v.get("feature_name", "") for v in found.get("violations", [])}),
        }

    def drift_report(self, request: Request) -> Response:
        report = self._drift_report(request.path_params["name"])
        if report is None:
            raise HTTPException(404, "no drift report yet: mlops monitor drift --endpoint NAME")
        return FileResponse(report, media_type="text/html")

    def _package_split(self, record: Any, split: str) -> Any:
        """A split (``train``/``test``) of the execution that trained the served version."""
        import pandas as pd

        from mlops.executor.records import find_execution

        package = self.registry.describe_model_package(record.group, record.version)
        execution = package.metadata.get("PipelineExecutionId", "")
        try:
            run = find_execution(self.home.runs, execution)
        except MlopsError:
            return None
        for step in run.steps:
            if step.name == "Preprocess" and split in step.outputs:
                folder = self.store.path_for(str(step.outputs[split]))
                files = sorted(folder.glob("*.parquet"))
                return pd.read_parquet(files[0]) if files else None
        return None

    def _features(self, record: Any) -> list[dict[str, Any]]:
        """The form's fields: a version's schema never changes, so it is built once per version
        (it reads the training split, which on a large table takes a while)."""
        key = (record.group, record.version)
        if key not in self._fields:
            self._fields[key] = self._build_features(record)
        return self._fields[key]

    def _test_sample(self, record: Any) -> Any:
        """Up to TEST_ROWS_KEPT rows of the version's test split, read once per version."""
        key = (record.group, record.version)
        if key not in self._test_rows:
            test = self._package_split(record, "test")
            if test is not None and len(test) > TEST_ROWS_KEPT:
                test = test.sample(TEST_ROWS_KEPT, random_state=0)
            self._test_rows[key] = test
        return self._test_rows[key]

    def _build_features(self, record: Any) -> list[dict[str, Any]]:
        from mlops.registry.projects import input_schema

        package = self.registry.describe_model_package(record.group, record.version)
        schema = input_schema(self.store.path_for(package.model_data_url))
        train = self._package_split(record, "train")
        features = []
        listed: list[dict[str, Any]] = schema["features"]  # type: ignore[assignment]
        for feature in listed:
            categories: list[str] = []
            if feature["kind"] == "categorical" and train is not None:
                counts = train[feature["name"]].dropna().astype(str).value_counts()
                categories = [str(c) for c in counts.index[:50]]
            features.append({**feature, "categories": categories})
        return features

    def _captures(self, record: Any) -> str:
        if not record.capture_dir or not Path(record.capture_dir).is_dir():
            return ""
        files = sorted(Path(record.capture_dir).rglob("*.jsonl"))[-3:]
        lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines()]
        return "\n".join(lines[-CAPTURED_SHOWN:])

    async def try_model(self, request: Request) -> Response:
        form = await _form(request)
        self._check_csrf(form.get("csrf"))
        record = self.endpoints.describe(request.path_params["name"])
        names = [f["name"] for f in self._features(record)]
        values = {name: str(form.get(f"f:{name}", "")) for name in names}
        body = json.dumps(values).encode()
        try:
            result = self.endpoints.invoke(
                record.name, body, "application/json", "application/json", "probabilities=true"
            )
        except MlopsError as exc:
            message = str(exc)
            field = next((n for n in names if repr(n) in message or f'"{n}"' in message), None)
            return self.endpoint(
                request, values=values, error=message, error_field=field, status=400
            )
        answer = json.loads(result.body)
        prediction = answer["predictions"][0]
        probabilities = None
        if answer.get("probabilities"):
            probabilities = list(zip(answer["classes"], answer["probabilities"][0], strict=True))
        return self.endpoint(
            request, values=values, prediction=prediction, probabilities=probabilities
        )

    async def random_row(self, request: Request) -> Response:
        form = await _form(request)
        self._check_csrf(form.get("csrf"))
        record = self.endpoints.describe(request.path_params["name"])
        test = self._test_sample(record)
        if test is None or test.empty:
            return self.endpoint(request, error="no test split is known for this version")
        row = test.iloc[random.randrange(len(test))]
        values = {
            f["name"]: "" if _missing(row.get(f["name"])) else _cell(row.get(f["name"]), f["kind"])
            for f in self._features(record)
        }
        return self.endpoint(request, values=values)

    def experiments(self, request: Request) -> Response:
        from mlops.tracking import TrackingError, compare
        from mlops.tracking.summary import local_tracking_uri

        experiment = request.query_params.get("experiment", "mlops-tabular")
        comparison, message = None, ""
        if (self.home.root / "mlflow" / "mlflow.db").is_file():
            try:
                comparison = compare(local_tracking_uri(self.home), experiment, top=10)
            except TrackingError as exc:
                message = str(exc)
        else:
            message = "no MLflow store yet: runs are logged by `mlops pipeline run`"
        names = sorted({m for r in comparison.runs for m in r.metrics}) if comparison else []
        return self.render(
            "experiments.html",
            title=f"Experiments: {experiment}",
            comparison=comparison,
            metric_names=names,
            message=message,
            mlflow_url=self.mlflow_url,
        )

    def _check_csrf(self, token: Any) -> None:
        if not isinstance(token, str) or not secrets.compare_digest(token, self.csrf):
            raise HTTPException(403, "the form's CSRF token is missing or stale: reload the page")


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form (every form here is one): the standard library parses it."""
    from urllib.parse import parse_qsl

    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def _page(request: Request) -> int:
    try:
        return int(request.query_params.get("page", "1"))
    except ValueError:
        return 1


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(value: Any, kind: str) -> str:
    if kind == "datetime":
        return str(value)[:10]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def create_app(console: Console) -> Starlette:
    """The console's routes over ``console`` (the local home's, or mlops.ui.aws's AwsConsole)."""

    async def error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            status, message = exc.status_code, str(exc.detail)
        elif isinstance(exc, MlopsError):  # what the CLI would print as its error line
            status, message = 404 if isinstance(exc, NotFound) else 400, str(exc)
        else:
            log.exception("console page failed: %s", request.url.path)
            status, message = 500, "the console failed on this page; its log has the details"
        return console.render("error.html", status=status, title="Error", message=message)

    routes = [
        Route("/", lambda r: RedirectResponse("/projects")),
        Route("/projects", console.projects),
        Route("/projects/{project}/executions", console.executions),
        Route("/projects/{project}/versions", console.versions),
        Route("/projects/{project}/versions/{version:int}", console.version),
        Route("/projects/{project}/versions/{version:int}/report", console.report),
        Route(
            "/projects/{project}/versions/{version:int}/{action:str}",
            console.decide,
            methods=["POST"],
        ),
        Route("/executions/{execution}", console.execution),
        Route("/executions/{execution}/eda", console.eda),
        Route("/executions/{execution}/steps/{step}/log", console.step_log),
        Route("/endpoints", console.endpoints_page),
        Route("/endpoints/{name}", console.endpoint),
        Route("/endpoints/{name}/drift", console.drift_report),
        Route("/endpoints/{name}/try", console.try_model, methods=["POST"]),
        Route("/endpoints/{name}/random", console.random_row, methods=["POST"]),
        Route("/experiments", console.experiments),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={Exception: error, HTTPException: error, MlopsError: error},
    )

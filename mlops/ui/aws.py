"""The console with ``--target aws``: a deployed stage's SageMaker resources, read-only except
approve/reject, which needs a ticked confirmation (it changes the shared Model Registry and, on
approval, starts the release).

The pages read through the AWS target the CLI's ``--target aws`` commands use (mlops.target.aws,
mlops.cloud); one project: the stage's (cdk.json), or ``--project``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from mlops.errors import MlopsError, NotFound
from mlops.home import Home
from mlops.target.base import StepRow, Target
from mlops.ui.app import Console, _page, _read, graph_svg, paginate

EXECUTIONS_READ = 1000  # newest executions listed (ListPipelineExecutions pages through them)


class AwsConsole(Console):
    def __init__(self, home: Home, target: Target) -> None:
        super().__init__(home)
        self.target = target
        self.registry = target.registry  # type: ignore[assignment]
        self.stage = target.stage_name or ""
        self.templates.globals["where"] = f"AWS stage {self.stage} · project {target.project}"
        self.confirm = (
            f"I confirm: this changes the Model Registry of AWS stage {self.stage} "
            "(an approval starts the release)"
        )

    def _project(self, request: Request) -> str:
        project = str(request.path_params["project"])
        if project != self.target.project:
            raise NotFound(
                f"this console reads project {self.target.project} of stage {self.stage}; "
                f"start it with --project {project} for that one"
            )
        return project

    # Pages ------------------------------------------------------------------------------------
    def projects(self, request: Request) -> Response:
        project = self.target.project
        try:
            executions = len(self.target.executions(EXECUTIONS_READ))
        except NotFound:  # the build stack is not deployed (yet): its pipeline does not exist
            executions = 0
        projects = [
            {
                "name": project,
                "executions": executions,
                "versions": len(self.registry.list_model_packages(self.target.default_group)),
            }
        ]
        return self.render("projects.html", title="Projects", projects=projects)

    def executions(self, request: Request) -> Response:
        project = self._project(request)
        rows = [
            {
                "execution_id": e.execution_id,
                "status": e.status,
                "started": e.started,
                "dataset": e.dataset,
                "target": e.target,
                "failure": e.failure_reason,
            }
            for e in self.target.executions(EXECUTIONS_READ)
        ]
        page = paginate(rows, _page(request))
        return self.render("executions.html", title=f"{project}: executions", page=page)

    def execution(self, request: Request) -> Response:
        from mlops.cloud import execution_arn, execution_parameters
        from mlops.executor.definition import plan

        execution = str(request.path_params["execution"])
        aws = self.target.aws  # type: ignore[attr-defined]
        arn = execution_arn(aws, execution)
        shown: dict[str, Any] = {}

        def keep(execution_id: str, status: str, steps: list[StepRow]) -> None:
            shown.update(status=status, steps=steps)

        try:
            self.target.steps(execution, keep, watch=False, interval=0)
        except MlopsError:  # a Failed or Stopped execution: its steps were shown first
            if "steps" not in shown:
                raise
        definition = _definition(aws, arn)
        needs = plan(definition)[1]
        steps: list[StepRow] = shown["steps"]
        names = list(needs) + [s.name for s in steps if s.name not in needs]
        failures = [f"{s.name}: {s.detail}" for s in steps if s.status == "Failed"]
        record = {
            "execution_id": execution,
            "pipeline_name": self.target.project,
            "status": shown["status"],
            "failure_reason": "; ".join(failures),
            "parameters": execution_parameters(aws, arn),
        }
        rows = [
            {
                "name": s.name,
                "type": s.type,
                "status": s.status,
                "seconds": s.seconds,
                "cache": f"hit: {s.cache_hit}" if s.cache_hit else "",
                "failure": s.detail if s.status == "Failed" else "",
                "log": "",  # in CloudWatch Logs, under the step's job
            }
            for s in steps
        ]
        return self.render(
            "execution.html",
            title=f"Execution {execution}",
            record=record,
            steps=rows,
            graph=graph_svg(names, needs, {s.name: s.status for s in steps}),
            eda=False,
        )

    def eda(self, request: Request) -> Response:
        raise HTTPException(404, "on AWS the EDA report is in the Preprocess job's S3 output")

    def step_log(self, request: Request) -> Response:
        raise HTTPException(404, "on AWS a step's log is in CloudWatch Logs, under its job")

    def versions(self, request: Request) -> Response:
        self._project(request)
        return super().versions(request)

    def _version_package(self, request: Request) -> tuple[str, Any]:
        project = self._project(request)
        version = int(request.path_params["version"])
        return project, self.registry.describe_model_package(self.target.default_group, version)

    def _has_report(self, package: Any) -> bool:
        return True  # the Evaluate step's, read from S3 when the frame asks

    def _card(self, package: Any) -> str:
        from mlops.model_card.files import CARD_MARKDOWN

        return _read(self.target.version_files(package).default_dir() / CARD_MARKDOWN) or (
            f"Not written yet: mlops models card {package.version} --target aws "
            f"--stage {self.stage}"
        )

    def _lineage(self, package: Any) -> list[str]:
        try:
            return self.target.lineage(package.group, package.version).lines()
        except MlopsError as exc:
            return [f"no lineage: {exc}"]

    def report(self, request: Request) -> Response:
        from mlops.model_card.files import REPORT_FILE

        _, package = self._version_package(request)
        body = self.target.version_files(package).evaluation_file(REPORT_FILE)
        if body is None:
            raise HTTPException(404, "the Evaluate step of this version wrote no report")
        return HTMLResponse(body.decode("utf-8"))

    def endpoints_page(self, request: Request) -> Response:
        from mlops.stages import names

        name = names(self.target.project, self.stage).endpoint
        try:
            view = self.target.endpoint(name)
        except NotFound:
            return self.render("endpoints.html", title="Endpoints", endpoints=[])
        details = dict(view.details)
        package = details.get("Model package", "")
        row = {
            "name": view.name,
            "status": view.status,
            "group": package.rsplit("/", 2)[-2] if package.count("/") >= 2 else "",
            "version": package.rsplit("/", 1)[-1] if package else "",
            "url": "SageMaker Runtime",
        }
        return self.render("endpoints.html", title="Endpoints", endpoints=[row])

    def endpoint(self, request: Request, **extra: Any) -> Response:
        view = self.target.endpoint(request.path_params["name"])
        return self.render(
            "endpoint_aws.html", title=f"Endpoint {view.name}", endpoint=view, stage=self.stage
        )

    async def try_model(self, request: Request) -> Response:
        raise MlopsError(self._read_only())

    async def random_row(self, request: Request) -> Response:
        raise MlopsError(self._read_only())

    def drift_report(self, request: Request) -> Response:
        raise HTTPException(404, "on AWS, Model Monitor writes its reports to the stage's bucket")

    def _read_only(self) -> str:
        return (
            "the AWS console does not invoke endpoints (each call is billed traffic): use "
            f"mlops endpoint invoke NAME --file rows.csv --target aws --stage {self.stage}"
        )

    def experiments(self, request: Request) -> Response:
        message = (
            "AWS runs are logged to the stage's MLflow tracking server: "
            f"mlops experiments compare --stage {self.stage}"
        )
        return self.render(
            "experiments.html",
            title="Experiments",
            comparison=None,
            metric_names=[],
            message=message,
            mlflow_url=None,
        )


def _definition(aws: Any, arn: str) -> dict[str, Any]:
    """The definition this execution ran (DescribePipelineDefinitionForExecution)."""
    from mlops.aws import explained

    with explained("sagemaker:DescribePipelineDefinitionForExecution", arn):
        body = aws.client("sagemaker").describe_pipeline_definition_for_execution(
            PipelineExecutionArn=arn
        )["PipelineDefinition"]
    return dict(json.loads(body))

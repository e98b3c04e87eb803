"""`mlops monitor`: Model Monitor baselines of registered versions, drift of captured traffic."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mlops.commands import PROJECT_OPTION, STAGE_OPTION, TARGET_OPTION, flagged, out, target_for
from mlops.errors import MlopsError, NotFound
from mlops.target import Target, TargetKind

if TYPE_CHECKING:
    from mlops.monitoring import Captures, DriftResult

# Exit code when a check finds violations: like `diff`, 1 means "differs" while 2 stays
# "bad arguments" and 3 "not found" (see mlops.errors), so a scheduler can tell them apart.
VIOLATIONS_EXIT_CODE = 1

app = typer.Typer(
    no_args_is_help=True, help="Model Monitor baselines and drift of captured traffic."
)


def _open(target: TargetKind, stage: str, project: str | None) -> tuple[Target, str]:
    """The target, and the project's group in its registry."""
    chosen = target_for(target, stage, project)
    return chosen, chosen.default_group


@app.command("baseline")
def baseline(
    version: int,
    output: Annotated[Path | None, typer.Option(help="Folder to write the files into.")] = None,
    project: Annotated[str | None, PROJECT_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
    uri: Annotated[
        bool,
        typer.Option(
            "--uri", help="Only print the registered baseline's S3 folder (cdk -c baseline_uri=)."
        ),
    ] = False,
) -> None:
    """Write (or show) the Model Monitor baseline of a registered version."""
    from sagemaker_jobs.baseline import CONSTRAINTS_FILE, SCHEMA_FILE, STATISTICS_FILE

    where, group = _open(target, stage, project)
    package = where.registry.describe_model_package(group, version)
    if uri:
        if not package.drift_baseline:
            raise NotFound(
                f"{package.group} version {version} registered no baseline (it predates them): "
                "run the pipeline again, or pass -c baseline_uri= by hand"
            )
        out.print(package.drift_baseline["statistics"].rsplit("/", 1)[0])
        return
    folder, how = where.baseline_dir(package, output)
    statistics = json.loads((folder / STATISTICS_FILE).read_text(encoding="utf-8"))
    out.print(
        f"Baseline of {package.group} version {package.version} ({how}): "
        f"{int(statistics['dataset']['item_count'])} training rows, "
        f"{len(statistics['features'])} features"
    )
    out.print(f"Statistics:   {folder / STATISTICS_FILE}")
    out.print(f"Constraints:  {folder / CONSTRAINTS_FILE}")
    if (folder / SCHEMA_FILE).exists():
        out.print(f"Names:        {folder / SCHEMA_FILE}")


@app.command("drift")
def drift(
    endpoint: Annotated[str, typer.Option("--endpoint", help="Endpoint whose captures to check.")],
    baseline: Annotated[
        str | None,
        typer.Option(help="A model version or a baseline folder (default: the version served)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Folder for the results (default: .mlops/monitoring/...).")
    ] = None,
    psi_threshold: Annotated[
        float, typer.Option(min=0, help="PSI at or above which a feature may drift.")
    ] = 0.2,
    p_value: Annotated[
        float,
        typer.Option(min=0, max=1, help="The KS / chi-square test must reject at this level."),
    ] = 0.01,
    completeness_tolerance: Annotated[
        float, typer.Option(min=0, max=1, help="Allowed drop of a feature's non-missing share.")
    ] = 0.05,
    hours: Annotated[
        float | None, typer.Option(min=0, help="Only requests of the last N hours (default: all).")
    ] = None,
    max_files: Annotated[
        int, typer.Option(min=1, help="Read at most this many newest capture files.")
    ] = 1000,
    project: Annotated[str | None, PROJECT_OPTION] = None,
    target: Annotated[TargetKind, TARGET_OPTION] = TargetKind.local,
    stage: Annotated[str, STAGE_OPTION] = "dev",
) -> None:
    """Compare captured requests with a baseline; exit 1 when a check finds violations."""
    from mlops.monitoring import Thresholds, detect_drift, read_captures
    from mlops.monitoring_report import write_report
    from sagemaker_jobs.baseline import read_baseline
    from sagemaker_jobs.contract import JobError

    where, group = _open(target, stage, project)
    if baseline is not None and Path(baseline).is_dir():
        folder = Path(baseline)
    elif baseline is not None and not baseline.isdigit():
        raise NotFound(f"--baseline {baseline!r} is neither a folder nor a model version number")
    else:
        package = (
            where.registry.describe_model_package(group, int(baseline))
            if baseline
            else where.served_package(endpoint)
        )
        folder, _ = where.baseline_dir(package, None)
    try:
        reference = read_baseline(folder)
    except JobError as exc:
        raise MlopsError(str(exc)) from exc
    files = where.captures(endpoint, max_files)
    since = ""
    if hours is not None:
        since = (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    captures = read_captures(files, [f.name for f in reference.features], since)
    thresholds = Thresholds(psi=psi_threshold, p_value=p_value, completeness=completeness_tolerance)
    result = detect_drift(reference, captures, thresholds)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    target_dir = output or where.home.root / "monitoring" / endpoint / stamp
    target_dir.mkdir(parents=True, exist_ok=True)
    violations_file = target_dir / "constraint_violations.json"
    violations_file.write_text(
        json.dumps(result.violations_document(), indent=2) + "\n", encoding="utf-8"
    )
    report = write_report(
        target_dir / "drift-report.html",
        result,
        endpoint=endpoint,
        baseline_source=str(folder),
        thresholds=thresholds,
        capture_files=captures.files,
    )
    _print_result(result, captures, folder, violations_file, report)
    if result.violations:
        raise typer.Exit(VIOLATIONS_EXIT_CODE)


def _print_result(
    result: DriftResult, captures: Captures, folder: Path, violations_file: Path, report: Path
) -> None:
    skipped = sum(captures.skipped.values())
    out.print(
        f"{result.rows} captured rows ({captures.records} records in {captures.files} files"
        + (f"; {skipped} not decoded: {captures.skipped}" if skipped else "")
        + f") against the baseline in {folder}"
    )
    table = Table("Feature", "Completeness", "PSI", "Test", "p-value", "Verdict")
    for f in result.features:
        table.add_row(
            f.name,
            f"{f.baseline_completeness:.0%} -> {f.completeness:.0%}" if f.present else "absent",
            "" if f.psi != f.psi else f"{f.psi:.3f}",
            f.test,
            "" if f.p_value != f.p_value else f"{f.p_value:.2g}",
            result.verdict(f),
        )
    out.print(table)
    for violation in result.violations:
        out.print(
            flagged(f"{violation['constraint_check_type']}:", "red", violation["description"])
        )
    out.print(f"Violations:   {violations_file} ({len(result.violations)})")
    out.print(f"Report:       {report}")

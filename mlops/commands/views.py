"""`mlops pipeline graph` and `pipeline logs`: a local run seen as Studio shows one, the step
DAG with each step's status and duration, and each step's log (followed while it runs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.tree import Tree

from mlops.errors import MlopsError, NotFound
from mlops.executor.records import ExecutionRecord, StepRecord

GRAPH_FILE = "graph.mmd"  # Mermaid: GitHub, VS Code and mermaid.live draw it
_STYLE = {"Succeeded": "green", "Failed": "red", "Executing": "yellow", "Stopped": "yellow"}


def dependencies(record: ExecutionRecord) -> dict[str, set[str]]:
    """Each step's upstream steps, from the project's definition (the run's own, rebuilt)."""
    import json

    from mlops.commands import current_home
    from mlops.executor.definition import plan
    from mlops.local import local_settings
    from sagemaker_jobs.pipeline import definition_json

    definition = json.loads(
        definition_json(
            local_settings("unknown", project=record.pipeline_name),
            cache=current_home().definitions,
        )
    )
    return plan(definition)[1]


def _label(step: StepRecord | None, name: str) -> str:
    if step is None:
        return f"{name}: NotStarted"
    seconds = "" if step.seconds is None else f" {step.seconds:.1f}s"
    cached = " (cache hit)" if step.cache_hit else ""
    return f"{name}: {step.status}{seconds}{cached}"


def tree(record: ExecutionRecord, needs: dict[str, set[str]]) -> Tree:
    """The DAG as a tree: each step under its last upstream step (others named beside it)."""
    steps = {s.name: s for s in record.steps}
    order = list(needs)  # the definition's order, dependencies first
    root = Tree(f"Execution {record.execution_id} ({record.pipeline_name}): {record.status}")
    nodes: dict[str, Tree] = {}
    for name in order:
        upstream = sorted(needs[name], key=order.index)
        parent = nodes[upstream[-1]] if upstream else root
        also = f"  (also after {', '.join(upstream[:-1])})" if len(upstream) > 1 else ""
        status = steps[name].status if name in steps else "NotStarted"
        nodes[name] = parent.add(
            f"{_label(steps.get(name), name)}{also}", style=_STYLE.get(status, "dim")
        )
    return root


def mermaid(record: ExecutionRecord, needs: dict[str, set[str]]) -> str:
    steps = {s.name: s for s in record.steps}
    lines = ["flowchart TD"]
    for name in needs:
        lines.append(f'    {name}["{_label(steps.get(name), name)}"]')
    for name, upstream in needs.items():
        lines.extend(f"    {before} --> {name}" for before in sorted(upstream))
    for status, colour in (
        ("Succeeded", "#d4f7d4"),
        ("Failed", "#f7d4d4"),
        ("Executing", "#fff3c4"),
        ("NotStarted", "#eeeeee"),
    ):
        members = [n for n in needs if (steps[n].status if n in steps else "NotStarted") == status]
        if members:
            lines.append(f"    classDef {status} fill:{colour}")
            lines.append(f"    class {','.join(members)} {status}")
    return "\n".join(lines) + "\n"


def write_graph(record: ExecutionRecord, needs: dict[str, set[str]]) -> Path:
    path = Path(record.run_dir) / GRAPH_FILE
    path.write_text(mermaid(record, needs), encoding="utf-8")
    return path


def step_log(record: ExecutionRecord, step: str) -> Path:
    found = next((s for s in record.steps if s.name == step), None)
    if found is None:
        names = ", ".join(s.name for s in record.steps) or "none yet"
        raise NotFound(f"execution {record.execution_id} has no step {step!r} (it ran: {names})")
    if not found.log_file or not Path(found.log_file).exists():
        raise NotFound(
            f"step {step} of {record.execution_id} wrote no log ({found.type} steps run no job)"
        )
    return Path(found.log_file)


def follow(
    path: Path,
    running: Callable[[], bool],
    write: Callable[[str], object],
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 1.0,
) -> None:
    """Print a log, then what is appended to it while ``running()`` (tail -f, ended by the
    step's end). ``sleep`` is injectable so a test needs no wall-clock wait."""
    with path.open(encoding="utf-8", errors="replace") as log:
        while True:
            chunk = log.read()
            if chunk:
                write(chunk)
            if not running():
                if rest := log.read():
                    write(rest)
                return
            sleep(interval)


def check_local(kind: str) -> None:
    if kind != "local":
        raise MlopsError(
            "graph and logs read a local run's records; for SageMaker use "
            "`mlops pipeline steps --target aws` and the step's CloudWatch log group"
        )

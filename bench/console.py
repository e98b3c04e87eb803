"""The console in a real browser: page load times, and the screenshots in docs/images.

In a temporary MLOPS_HOME it runs the demo pipeline (tracked), approves version 1, deploys an
endpoint with capture, sends it a few rows, and seeds a second project with 200 executions and
100 versions (records only). Then, in Debian's headless Chromium through chromedriver, it loads
every page kind REPEATS times and prints the median and max of the browser's own load time
(navigation start to the load event), and with --screenshots DIR saves one PNG per page.

    .venv/bin/python bench/console.py [--repeats 5] [--screenshots docs/images]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops.cli import main  # noqa: E402
from mlops.home import Home  # noqa: E402
from tests.mlops.test_ui import _driver  # noqa: E402
from tests.mlops.ui_server import console  # noqa: E402

# The pages docs/console.md shows.
SHOWN = {"execution", "version", "endpoint", "executions", "experiments"}


def seed(home: Home) -> None:
    from mlops.executor.records import ExecutionRecord, StepRecord
    from mlops.registry.local import LocalModelRegistry

    for i in range(200):
        execution_id = f"20260101-{i:06d}-abcdef"
        ExecutionRecord(
            execution_id=execution_id,
            pipeline_name="seeded",
            run_dir=str(home.runs / execution_id),
            parameters={"TargetColumn": "y", "InputDataUri": "s3://b/data.csv"},
            status="Succeeded",
            steps=[StepRecord("Preprocess", "Processing", "Succeeded")],
        ).save()
    registry = LocalModelRegistry(home.registry)
    for i in range(100):
        registry.create_model_package(
            "seeded",
            model_data_url=f"s3://b/{i}/model.tar.gz",
            image_uri="image",
            approval_status="PendingManualApproval",
            metrics={"metrics": {"accuracy": {"value": 0.9}}},
            metadata={},
            content_types=["text/csv"],
            response_types=["application/json"],
        )


def prepare(home: Home) -> str:
    os.environ["MLOPS_HOME"] = str(home.root)
    assert main(["pipeline", "run"]) == 0
    assert main(["models", "approve", "1", "--description", "bench: demo"]) == 0
    deploy = ["endpoint", "deploy", "--name", "demo", "--workers", "1", "--capture-percent", "100"]
    assert main(deploy) == 0
    rows = home.root / "rows.csv"
    rows.write_text("Biscoe,45.2,14.8,212,5200,female,2008\nDream,49.5,18.4,195,3600,male,2008\n")
    assert main(["endpoint", "invoke", "demo", "--file", str(rows)]) == 0
    seed(home)
    from mlops.executor.records import list_executions

    return list_executions(home.runs, "mlops-tabular")[0].execution_id


def main_(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--screenshots", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="console-bench-") as scratch:
        home = Home(Path(scratch) / "home")
        execution = prepare(home)
        pages = {
            "projects": "/projects",
            "executions": "/projects/seeded/executions",
            "executions-last-page": "/projects/seeded/executions?page=4",
            "execution": f"/executions/{execution}",
            "versions": "/projects/seeded/versions",
            "version": "/projects/mlops-tabular/versions/1",
            "endpoint": "/endpoints/demo",
            "experiments": "/experiments",
        }
        driver = _driver()
        try:
            driver.set_window_size(1280, 1000)
            with console(home) as url:
                print(f"{'page':22} {'median ms':>10} {'max ms':>8}   ({args.repeats} loads each)")
                for name, path in pages.items():
                    times = []
                    for _ in range(args.repeats):
                        driver.get(url + path)
                        times.append(
                            driver.execute_script(
                                "const t = performance.getEntriesByType('navigation')[0];"
                                "return t.loadEventEnd - t.startTime;"
                            )
                        )
                    print(f"{name:22} {statistics.median(times):10.1f} {max(times):8.1f}")
                    if args.screenshots and name in SHOWN:
                        args.screenshots.mkdir(parents=True, exist_ok=True)
                        driver.save_screenshot(str(args.screenshots / f"console-{name}.png"))
        finally:
            driver.quit()
            main(["endpoint", "delete", "demo"])
    return 0


if __name__ == "__main__":
    sys.exit(main_())

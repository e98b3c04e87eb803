"""The ``mlops`` command: the composition root. Every command group is registered here once,
and ``main`` is the one place where errors become messages and exit codes."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

import typer

from mlops.commands import (
    current_home,
    data,
    endpoint,
    err,
    experiments,
    flagged,
    models,
    option_aliases,
    pipeline,
)
from mlops.commands import lineage as lineage_commands
from mlops.commands import monitor as monitor_commands
from mlops.commands import ui as ui_commands
from mlops.errors import MlopsError

# An unexpected failure (a bug, or a state the code did not foresee) exits 70, EX_SOFTWARE in
# sysexits.h: unlike 1 to 3 it tells a script that retrying with other input will not help.
INTERNAL_ERROR_EXIT_CODE = 70
DEBUG_ENV = "MLOPS_DEBUG"

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="The tabular ML loop, locally or on SageMaker: pipeline, models, endpoints, monitoring.",
    context_settings={"token_normalize_func": option_aliases},
)


@app.callback()
def _in_home(ctx: typer.Context) -> None:
    # Before any command runs (not for `mlops --help`): temporary files go under MLOPS_HOME.
    ctx.with_resource(current_home().temporary_files())


app.add_typer(pipeline.app, name="pipeline")
app.add_typer(data.app, name="data")
app.add_typer(models.app, name="models")
app.add_typer(endpoint.app, name="endpoint")
app.add_typer(experiments.app, name="experiments", no_args_is_help=True)
app.add_typer(monitor_commands.app, name="monitor", no_args_is_help=True)
app.command("lineage")(lineage_commands.lineage)
app.command("serve")(endpoint.serve)
app.command("transform")(endpoint.transform)
app.command("ui")(ui_commands.ui)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the one place where errors become messages and exit codes."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result: Any = app(
            args=list(argv) if argv is not None else None, prog_name="mlops", standalone_mode=False
        )
    except MlopsError as exc:
        err.print(flagged("error:", "red", str(exc)))
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 130
    except typer.TyperException as exc:  # usage errors: typer knows how to show them
        show = getattr(exc, "show", None)
        if show:
            show()
        else:
            err.print(flagged("error:", "red", str(exc)))
        return int(getattr(exc, "exit_code", 2))
    except Exception as exc:  # noqa: BLE001 (a bug: one line, the traceback on request)
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            err.print_exception()
        err.print(
            flagged(
                "error:",
                "red",
                f"unexpected {type(exc).__name__}: {exc} ({DEBUG_ENV}=1 shows the traceback)",
            )
        )
        return INTERNAL_ERROR_EXIT_CODE
    return result if isinstance(result, int) else 0


def entry() -> NoReturn:
    """The ``mlops`` command: ``main``, then exit without tearing the interpreter down. The
    SageMaker SDK, botocore and pandas leave so many objects behind that their teardown took 1.5
    to 2.5 s after every command (more than the whole of a cached pipeline run's jobs). What a
    normal exit does first is done here too: other threads finish, exit handlers run (logging's
    included), output is flushed."""
    code = main()
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()

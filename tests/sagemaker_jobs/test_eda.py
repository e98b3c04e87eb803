"""The EDA report: each flag's rule on a crafted table, escaping, a page a browser renders whole,
the CLI before any run, and Preprocess writing it beside the profile in every run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.cli import main
from sagemaker_jobs import eda
from tests.browser import render

ROWS = 400


def _crafted(path: Path) -> Path:
    rng = np.random.default_rng(0)
    outcome = rng.choice(["yes", "no"], ROWS)
    signal = rng.normal(size=ROWS)
    pd.DataFrame(
        {
            "outcome": outcome,
            "signal": signal,
            "constant": 1.0,
            "mostly_a": ["b"] * 3 + ["a"] * (ROWS - 3),
            "row_number": np.arange(1000, 1000 + ROWS),
            "signal_again": signal,
            "refund_issued": (outcome == "yes") + rng.normal(scale=0.001, size=ROWS),
            "income": rng.pareto(1.2, ROWS),
            "customer": [f"customer {i}" for i in range(ROWS)],  # text unique per row
            'say "hi"': rng.choice(["<script>alert(1)</script>", "plain"], ROWS),
        }
    ).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def crafted_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("eda")
    page = folder / "crafted-eda.html"
    data = _crafted(folder / "crafted.csv")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        import io
        from contextlib import redirect_stderr, redirect_stdout

        printed = io.StringIO()
        with redirect_stdout(printed), redirect_stderr(printed):
            code = main(["data", "report", str(data), "--target", "outcome", "--output", str(page)])
    assert code == 0, printed.getvalue()
    return page, printed.getvalue()


@pytest.mark.parametrize(
    ("column", "rule"),
    [
        ("constant", "constant"),
        ("mostly_a", "near_constant"),
        ("row_number", "near_unique"),  # dropped by Preprocess as an identifier, and said so
        ("customer", "near_unique"),
        ("signal_again", "duplicate"),
        ("refund_issued", "leakage_suspect"),
        ("income", "extreme_skew"),
    ],
)
def test_each_rule_flags_its_column(
    crafted_report: tuple[Path, str], column: str, rule: str
) -> None:
    _, printed = crafted_report
    flagged = [line.strip() for line in printed.splitlines() if line.startswith("  ")]
    assert any(line.startswith(f"{column}: {rule} (") for line in flagged), printed


def test_clean_columns_raise_no_flag(crafted_report: tuple[Path, str]) -> None:
    _, printed = crafted_report
    flagged = [line.strip() for line in printed.splitlines() if line.startswith("  ")]
    assert not [line for line in flagged if line.startswith(("signal:", 'say "hi":'))]
    assert len(flagged) == 7


def test_the_page_lists_dropped_columns_and_escapes_data(crafted_report: tuple[Path, str]) -> None:
    page, _ = crafted_report
    text = page.read_text(encoding="utf-8")
    assert "dropped by Preprocess" in text and "customer" in text  # the text identifier
    assert "<script>alert(1)</script>" not in text and "say &quot;hi&quot;" in text
    assert "Computed on all 400 rows." in text


def test_the_page_renders_with_every_image_in_chromium(crafted_report: tuple[Path, str]) -> None:
    page, _ = crafted_report
    rendered = render(page)
    assert rendered.images_total >= 4 and rendered.images_loaded == rendered.images_total


def test_a_large_table_is_analysed_on_a_bounded_sample() -> None:
    table = pd.DataFrame({"x": np.arange(eda.MAX_ROWS * 2, dtype=float), "y": "a"})
    assert len(eda.sample(table)) == eda.MAX_ROWS
    assert eda.sample(table).equals(eda.sample(table))  # the same rows every time


def test_the_cli_names_a_missing_file_and_an_unknown_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "report", str(tmp_path / "nope.csv"), "--target", "y"]) == 2
    assert "nope.csv does not exist" in capsys.readouterr().err
    data = _crafted(tmp_path / "crafted.csv")
    assert main(["data", "report", str(data), "--target", "nope"]) == 2
    assert "target column 'nope' not found" in capsys.readouterr().err

"""The report page builder: escaped text, embedded figures that a real browser decodes."""

from __future__ import annotations

from pathlib import Path

from sagemaker_jobs.html_report import Section, new_figure, write_page
from tests.browser import render


def test_a_page_escapes_text_and_its_figures_load_in_chromium(tmp_path: Path) -> None:
    figure = new_figure()
    figure.add_subplot().plot([1, 2, 3], [3, 1, 2])
    section = Section("Scores <raw>", paragraphs=["a < b & c"]).table(
        ["name", "value"], [["x", 0.5]]
    )
    page = write_page(tmp_path / "report.html", "Title", "sub", [section.figure("line", figure)])

    text = page.read_text()
    assert "Scores &lt;raw&gt;" in text and "a &lt; b &amp; c" in text
    assert '<td class="num">0.5</td>' in text
    rendered = render(page)
    assert (rendered.images_total, rendered.images_loaded) == (1, 1)


def test_labels_from_data_are_text_even_with_dollar_signs(tmp_path: Path) -> None:
    figure = new_figure()
    axes = figure.add_subplot()
    axes.bar(["$x^$", "$1{$", "under $5"], [1, 2, 3])  # mathtext raises on the first two
    axes.set_title("$\\foo$")
    section = Section("Categories").figure("bands", figure)
    page = write_page(tmp_path / "report.html", "Title", "sub", [section])
    assert render(page).images_loaded == 1

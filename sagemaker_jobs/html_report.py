"""Self-contained HTML reports: matplotlib figures embedded as PNG data URIs, one file to open.

A report is one file, so it can be an S3 artifact of a job, a download from the console, or an
attachment, and still show every plot. Matplotlib runs on its Agg backend: no display needed.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #1f2933; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 1px solid #d9e2ec; padding-bottom: .3rem; }
.subtitle { color: #52606d; margin-top: 0; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #d9e2ec; padding: .3rem .6rem; text-align: left; }
th { background: #f0f4f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #cf222e; font-weight: 600; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; } figcaption { font-size: .85rem; color: #52606d; }
img { max-width: 100%; border: 1px solid #e4e7eb; }
p.note { font-size: .9rem; color: #52606d; }
"""


def new_figure(
    width: float = 5.0, height: float = 4.0, layout: Literal["constrained"] | None = "constrained"
) -> Figure:
    """A figure not registered with pyplot, so nothing leaks between plots or threads.

    The constrained layout fits labels best and doubles the drawing time; ``layout=None``
    (margins set by the caller) suits pages drawn in every run."""
    import matplotlib
    from matplotlib.figure import Figure

    # Labels are data (feature and category names): "$5-$10" is text, not math to typeset.
    matplotlib.rcParams["text.parse_math"] = False

    return Figure(figsize=(width, height), dpi=100, layout=layout)


def figure_data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


@dataclass
class Section:
    """One titled part of a report: paragraphs, tables and figures, in that order."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[Sequence[str], Iterable[Sequence[Any]]]] = field(default_factory=list)
    figures: list[tuple[str, Figure]] = field(default_factory=list)
    raw_html: list[str] = field(default_factory=list)  # already-escaped markup, e.g. a verdict

    def table(self, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Section:
        self.tables.append((header, rows))
        return self

    def figure(self, caption: str, figure: Figure) -> Section:
        self.figures.append((caption, figure))
        return self

    def render(self) -> str:
        parts = [f"<h2>{html.escape(self.title)}</h2>"]
        parts += self.raw_html
        parts += [f'<p class="note">{html.escape(p)}</p>' for p in self.paragraphs]
        for header, rows in self.tables:
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
            body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        if self.figures:
            parts.append('<div class="figures">')
            for caption, figure in self.figures:
                alt = html.escape(caption, quote=True)
                parts.append(
                    f'<figure><img src="{figure_data_uri(figure)}" alt="{alt}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
            parts.append("</div>")
        return "\n".join(parts)


def render_page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    body = "\n".join(section.render() for section in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>"
        f'<h1>{html.escape(title)}</h1><p class="subtitle">{html.escape(subtitle)}</p>\n'
        f"{body}\n</body></html>\n"
    )


def write_page(path: Path, title: str, subtitle: str, sections: Sequence[Section]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(title, subtitle, sections), encoding="utf-8")
    return path

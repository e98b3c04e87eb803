"""The README and docs/ hold together: every relative link and #anchor resolves (GitHub's rules),
every page is reachable from the README and the docs index, every image is shown somewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](target); then reference definitions: [name]: target
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def prose_lines(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks (a '#' or a link inside a block is not Markdown)."""
    fence: str | None = None
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None and line.strip().startswith(fence[0] * len(fence)):
            fence = None
        elif fence is None:
            yield line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation but '-' and '_'
    dropped, each space a '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        if match := _HEADING.match(line):
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")  # duplicates get -1, -2, ...
    return found


def links(page: Path) -> list[str]:
    found: list[str] = []
    prose: list[str] = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        if reference := _REFERENCE.match(line):
            found.append(reference.group(1))
        else:
            prose.append(line)
    # A link's text may wrap onto the next line, so match over the whole prose.
    return found + _LINK.findall(_INLINE_CODE.sub("", "\n".join(prose)))


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with each relative link of ``page``; external links are not fetched."""
    root = root.resolve()
    problems: list[str] = []
    for target in links(page):
        if not target or _SCHEME.match(target):
            continue
        path, _, anchor = target.partition("#")
        if not path:
            resolved = page.resolve()
        elif path.startswith("/"):  # GitHub resolves these from the repository's root
            resolved = root / path.lstrip("/")
        else:
            resolved = (page.parent / path).resolve()
        if not resolved.is_relative_to(root):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file {resolved.relative_to(root)}")
        elif anchor and resolved.suffix != ".md":
            problems.append(f"{target}: an anchor into a file that is not Markdown")
        elif anchor and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading with the anchor #{anchor} in {resolved.name}")
    return problems


def linked_files(page: Path) -> set[Path]:
    return {
        (page.parent / target.partition("#")[0]).resolve()
        for target in links(page)
        if target.partition("#")[0] and not _SCHEME.match(target)
    }


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_every_docs_page_is_listed_in_the_index_and_the_readme() -> None:
    index = DOCS / "index.md"
    everything = {p.resolve() for p in DOCS.rglob("*.md")} - {index.resolve()}
    assert index.resolve() in linked_files(ROOT / "README.md")
    unlisted = {
        "docs/index.md": everything - linked_files(index),
        "README.md (Where to read next)": everything - linked_files(ROOT / "README.md"),
    }
    missing = {where: sorted(p.name for p in files) for where, files in unlisted.items() if files}
    assert not missing, f"add a line for each page to: {missing}"


def test_every_image_in_docs_images_is_shown_on_a_page() -> None:
    shown = set().union(*(linked_files(page) for page in pages()))
    images = {p.resolve() for p in (DOCS / "images").iterdir() if p.is_file()}
    assert images, "docs/images holds the screenshots the pages show"
    assert sorted(p.name for p in images - shown) == []


def test_docs_pages_named_in_messages_exist() -> None:
    """An error that says 'See docs/x.md' must point at a page that exists."""
    named = {
        match
        for package in ("mlops", "inference", "sagemaker_jobs", "infra")
        for source in (ROOT / package).rglob("*.py")
        for match in re.findall(r"docs/[\w./-]+\.md", source.read_text(encoding="utf-8"))
    }
    assert named, "the tuning settings error names its docs page"
    assert sorted(p for p in named if not (ROOT / p).is_file()) == []


def test_slugs_follow_github() -> None:
    assert slug("Run it on AWS: the same CLI with `--target aws`") == (
        "run-it-on-aws-the-same-cli-with---target-aws"
    )
    assert slug("Metrics: Prometheus and Grafana") == "metrics-prometheus-and-grafana"
    assert slug("Bootstrap, deploy, release") == "bootstrap-deploy-release"
    assert slug("The `mlops` command") == "the-mlops-command"
    assert slug("See [the docs](docs/index.md)") == "see-the-docs"


def test_the_checker_finds_broken_files_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(
        "# A\n\n## Setup\n\n## Setup\n\n```md\n## Not a heading\n[x](gone.md)\n```\n",
        encoding="utf-8",
    )
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md) [ok](docs/a.md#setup-1) [ok](#top) [web](https://example.com/x)\n"
        "`[code](nowhere.md)` [gone](docs/b.md) [bad anchor](docs/a.md#not-a-heading)\n"
        "[up](../../etc/passwd) [a wrapped\nlink](docs/d.md)\n\n# Top\n\n[ref]: docs/c.md\n",
        encoding="utf-8",
    )
    assert broken_links(page, root=tmp_path) == [
        "docs/c.md: no such file docs/c.md",
        "docs/b.md: no such file docs/b.md",
        "docs/a.md#not-a-heading: no heading with the anchor #not-a-heading in a.md",
        "../../etc/passwd: outside the repository",
        "docs/d.md: no such file docs/d.md",
    ]

"""Render an HTML file in Debian's headless Chromium and count the images that really loaded.

`make test` installs Chromium and sets MLOPS_REQUIRE_BROWSER=1, so there a missing browser fails
the test; a bare `pytest` on a machine without it skips instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

# Counts images after the load event; written into a copy of the page, never into the report.
_PROBE = """<script>window.addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.imagesTotal = images.length;
  document.body.dataset.imagesLoaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
});</script>"""
# The flags this machine needs: no sandbox as root, no background traffic into a closed network.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@dataclass(frozen=True)
class Rendered:
    images_total: int
    images_loaded: int
    dom: str


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("MLOPS_REQUIRE_BROWSER") == "1":
            pytest.fail(
                "Chromium is required here (make test installs it: apt-get install chromium)"
            )
        pytest.skip("no Chromium on this machine (make test installs it)")
    return path


def render(page: Path) -> Rendered:
    """Load `page` (self-contained HTML) headless and report how many <img> decoded."""
    html = page.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as scratch:
        probe = Path(scratch) / page.name
        probe.write_text(html.replace("</body>", _PROBE + "</body>", 1), encoding="utf-8")
        result = subprocess.run(
            [
                chromium(),
                *_FLAGS,
                f"--user-data-dir={scratch}/profile",
                "--virtual-time-budget=10000",
                "--dump-dom",
                probe.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    dom = result.stdout
    total = re.search(r'data-images-total="(\d+)"', dom)
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    assert total and loaded, f"the page never finished loading:\n{result.stderr[-2000:]}"
    return Rendered(int(total.group(1)), int(loaded.group(1)), dom)


def screenshot(page: Path, png: Path, width: int = 1200, height: int = 2400) -> None:
    """Save a PNG of the page (used to refresh the README's images)."""
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [
                chromium(),
                *_FLAGS,
                f"--user-data-dir={scratch}/profile",
                "--hide-scrollbars",
                f"--window-size={width},{height}",
                f"--screenshot={png}",
                page.as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )

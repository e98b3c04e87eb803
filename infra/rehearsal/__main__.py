"""`python -m infra.rehearsal` (`make rehearse`): synthesize every stage, rehearse, report."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from infra.rehearsal import rehearse, synth_all


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="rehearsal-") as scratch:
        report = rehearse(synth_all(Path(scratch)))
    for line in report.lines():
        print(line)
    print("rehearsal passed" if report.ok else "rehearsal FAILED", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

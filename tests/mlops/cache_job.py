"""The test cache's toy job: copies every input file to the output with a line added; fails if
the file named in its argument exists. A file, as SageMaker limits each argument to 256
characters on one line."""

import os
import pathlib
import sys

opt_ml = pathlib.Path(os.environ["MLOPS_OPT_ML"])
if sys.argv[1:] != [""] and pathlib.Path(sys.argv[1]).exists():
    (opt_ml / "output").mkdir(parents=True, exist_ok=True)
    (opt_ml / "output" / "failure").write_text("broken on purpose")
    sys.exit(1)
root = opt_ml / "processing"
(root / "output").mkdir(parents=True, exist_ok=True)
for f in sorted((root / "input").rglob("*.csv")):
    (root / "output" / f.name).write_text(f.read_text() + "seen\n")

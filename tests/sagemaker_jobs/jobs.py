"""Run the jobs' entry points in-process on a relocated /opt/ml, chained as the pipeline does."""

from __future__ import annotations

import json
import shutil
import tarfile
from typing import Any

import numpy as np
import pandas as pd

from sagemaker_jobs import preprocess, train
from sagemaker_jobs.contract import Paths

OUTPUT = "/opt/ml/processing/output"


def run_preprocess(opt_ml: Paths, table: pd.DataFrame, target: str, *args: str) -> int:
    raw = opt_ml.map("/opt/ml/processing/input/raw")
    raw.mkdir(parents=True, exist_ok=True)
    table.to_csv(raw / "data.csv", index=False)
    return preprocess.main(["--target", target, *args])


def run_train(opt_ml: Paths, hyperparameters: dict[str, str] | None = None) -> int:
    output = opt_ml.map(OUTPUT)
    for channel in ("train", "validation"):
        shutil.copytree(output / channel, opt_ml.channel(channel, env={}), dirs_exist_ok=True)
    if hyperparameters is not None:
        opt_ml.hyperparameters_file.parent.mkdir(parents=True, exist_ok=True)
        opt_ml.hyperparameters_file.write_text(json.dumps(hyperparameters))
    return train.main(["train"])


def pack_model(opt_ml: Paths) -> None:
    target = opt_ml.map("/opt/ml/processing/model")
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target / "model.tar.gz", "w:gz") as tar:
        for item in opt_ml.model_dir(env={}).iterdir():
            tar.add(item, arcname=item.name)
    shutil.copytree(opt_ml.map(f"{OUTPUT}/test"), opt_ml.map("/opt/ml/processing/test"))
    shutil.copytree(opt_ml.map(f"{OUTPUT}/profile"), opt_ml.map("/opt/ml/processing/profile"))


def evaluation(opt_ml: Paths) -> dict[str, Any]:
    path = opt_ml.map("/opt/ml/processing/evaluation/evaluation.json")
    return json.loads(path.read_text(encoding="utf-8"))


def imbalanced_with_dates(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """Five classes, the rarest 3% of the rows; the date decides much of the class."""
    rng = np.random.default_rng(seed)
    classes = rng.choice(list("abcde"), size=rows, p=[0.5, 0.3, 0.12, 0.05, 0.03])
    index = np.searchsorted(list("abcde"), classes)
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(index * 70 + rng.integers(0, 60, rows), "D")
    return pd.DataFrame(
        {
            "ordered": days.strftime("%Y-%m-%d"),
            "size": index * 2.0 + rng.normal(size=rows),
            "noise": rng.normal(size=rows),
            "label": classes,
        }
    )


def regression_table(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    return pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "c": x[:, 2],
            "y": 10 * x[:, 0] - 4 * x[:, 1] + rng.normal(size=rows),
        }
    )

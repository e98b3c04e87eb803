"""Feature transforms that live inside the fitted model, so serving applies them too.

Kept free of anything but numpy and pandas: the model server unpickles this module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DATE_PARTS = ("year", "month", "day", "dayofweek", "epoch_days")


def date_parts(frame: pd.DataFrame) -> np.ndarray:
    """Turn each date-like column into numeric parts; unparseable cells become NaN."""
    blocks = []
    for name in frame.columns:
        when = pd.to_datetime(frame[name], errors="coerce", format="mixed")
        epoch_days = (when - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
        blocks.append(
            np.column_stack(
                [when.dt.year, when.dt.month, when.dt.day, when.dt.day_of_week, epoch_days]
            ).astype(float)
        )
    return np.hstack(blocks) if blocks else np.empty((len(frame), 0))


def date_part_names(transformer: object, input_features: list[str]) -> list[str]:
    return [f"{name}_{part}" for name in input_features for part in DATE_PARTS]

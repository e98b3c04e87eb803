"""Feature transforms that live inside the fitted model, so serving applies them too.

Kept free of anything but numpy and pandas: the model server unpickles this module.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

DATE_PARTS = ("year", "month", "day", "dayofweek", "epoch_days")
# Cells that mean "missing" (the common ones pandas reads as NaN); the model imputes them.
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})


def category_text(value: Any) -> str | None:
    """One text form per category, the same at training and serving time: the float 111.0
    (pandas reads an integer column with a blank as floats) and the request's 111 are both
    "111"; True and "TRUE" are "true"; missing markers are None."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else str(float(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    text = str(value).strip()
    if text.lower() in MISSING:
        return None
    return text.lower() if text.lower() in ("true", "false") else text


def category_texts(column: pd.Series) -> pd.Series:
    """``category_text`` of every cell: once per distinct value when the cells are text (a
    million-row column has a handful of categories), cell by cell otherwise (mixed cells such as
    True and 1 are equal to a hash table, but not as categories)."""
    if pd.api.types.infer_dtype(column, skipna=True) != "string":
        return column.map(category_text)
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    texts = [category_text(u) for u in uniques]
    if all(t is None for t in texts):  # nothing but missing markers: map's result, exactly
        return column.map(category_text)
    # As Series.map gives them: missing as NaN; code -1 (a missing cell) takes the last entry.
    table = np.array([np.nan if t is None else t for t in texts] + [np.nan], dtype=object)
    return pd.Series(table[codes], index=column.index, name=column.name)  # dtype as map infers it


MISSING_CATEGORY = "missing"  # what a missing category cell becomes, at training and serving


def fill_missing_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's first step on category columns: a missing cell is the category "missing"
    (pandas' fillna; scikit-learn's SimpleImputer took 1.4 s for 700k rows of four columns)."""
    return frame.fillna(MISSING_CATEGORY)


def parse_dates(values: pd.Series) -> pd.Series:
    """The one reading of date cells, for training, serving, profiles and drift: unparseable
    ones become NaT."""
    return pd.to_datetime(values, errors="coerce", format="mixed")


def unparseable_dates(values: list[Any]) -> list[Any]:
    """The non-missing cells that ``parse_dates`` cannot read."""
    texts = pd.Series([category_text(v) for v in values], dtype=object)
    bad = texts.notna() & parse_dates(texts).isna()
    return texts[bad].tolist()


def drift_date_parts(values: pd.Series) -> dict[str, pd.Series]:
    """The parts of a date column its drift is checked on: a shift of years shows in
    ``year``, a shift of season in ``dayofyear``. ``year`` is decimal (2020.5 is early July
    2020), so the dates of a single year still spread over the baseline's bins."""
    when = parse_dates(values)
    day = when.dt.day_of_year.astype(float)
    year = when.dt.year.astype(float) + (day - 1) / (365 + when.dt.is_leap_year.astype(float))
    return {"year": year, "dayofyear": day}


def date_parts(frame: pd.DataFrame) -> np.ndarray:
    """Turn each date-like column into numeric parts; unparseable cells become NaN."""
    blocks = []
    for name in frame.columns:
        when = parse_dates(frame[name])
        epoch_days = (when - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
        blocks.append(
            np.column_stack(
                [when.dt.year, when.dt.month, when.dt.day, when.dt.day_of_week, epoch_days]
            ).astype(float)
        )
    return np.hstack(blocks) if blocks else np.empty((len(frame), 0))


def date_part_names(transformer: object, input_features: list[str]) -> list[str]:
    return [f"{name}_{part}" for name in input_features for part in DATE_PARTS]

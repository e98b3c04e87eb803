"""Pure data core of the preprocess job: read, validate, clean, type, profile and split a table.

Everything here works on DataFrames and paths and raises ``JobError`` with a message that
names the column or file and the fix; ``preprocess.main`` only does the I/O around it.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from sagemaker_jobs import feature_selection
from sagemaker_jobs.contract import JobError
from sagemaker_jobs.features import category_texts, parse_dates

log = logging.getLogger(__name__)

ProblemType = Literal["classification", "regression"]
Kind = Literal["numeric", "categorical", "datetime"]
KINDS: tuple[str, ...] = ("numeric", "categorical", "datetime")
TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

# An integer target with at most this many distinct values is taken as class labels.
MAX_CLASSES_FOR_INTEGER_TARGET = 20
# A text column whose values parse as numbers this often is numeric with bad cells in it.
NUMERIC_LOOKING_SHARE = 0.9
_DATE_RE = re.compile(
    r"^\s*(\d{4}[-/]\d{1,2}[-/]\d{1,2}|\d{1,2}[-/]\d{1,2}[-/]\d{2,4})([ T]\S+)?\s*$"
)


@dataclass(frozen=True)
class DataSpec:
    """What the user told us about the data; everything else is inferred."""

    target: str
    problem_type: Literal["auto", "classification", "regression"] = "auto"
    column_types: dict[str, Kind] = field(default_factory=dict)


@dataclass(frozen=True)
class Schema:
    """What preprocess decided; train, evaluate and the server all read it."""

    target: str
    problem_type: ProblemType
    features: dict[str, Kind]
    classes: list[str] | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    # sagemaker_jobs.feature_selection's record: dropped columns, warnings and the rules' settings
    selection: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "problem_type": self.problem_type,
            "features": [{"name": n, "kind": k} for n, k in self.features.items()],
            "classes": self.classes,
            "dropped": self.dropped,
            "feature_selection": self.selection,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Schema:
        return cls(
            target=raw["target"],
            problem_type=raw["problem_type"],
            features={f["name"]: f["kind"] for f in raw["features"]},
            classes=raw.get("classes"),
            dropped=raw.get("dropped", {}),
            selection=raw.get("feature_selection", {}),
        )

    def keeping(self, names: list[str]) -> Schema:
        """This schema with only the features ``names`` (training-time selection)."""
        return replace(self, features={n: k for n, k in self.features.items() if n in names})

    def with_training_selection(self, record: dict[str, Any]) -> Schema:
        """The selection record with Train's part added: one record for the manifest."""
        return replace(self, selection={**self.selection, "training": record})

    def columns_of(self, kind: Kind) -> list[str]:
        return [n for n, k in self.features.items() if k == kind]


def parse_column_types(text: str) -> dict[str, Kind]:
    """Parse ``"age=numeric,city=categorical"`` (the CLI and job argument form)."""
    types: dict[str, Kind] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, kind = item.partition("=")
        if not sep or kind.strip() not in KINDS:
            raise JobError(
                f"bad column type {item!r}: write NAME=KIND with KIND one of {', '.join(KINDS)}"
            )
        types[name.strip()] = kind.strip()  # type: ignore[assignment]
    return types


def table_files(location: Path) -> list[Path]:
    if location.is_file():
        files = [location]
    elif location.is_dir():
        files = sorted(p for p in location.rglob("*") if p.is_file())
    else:
        raise JobError(f"the input data set ({location.name}) does not exist")
    tables = [p for p in files if p.suffix.lower() in TABLE_SUFFIXES]
    if not tables:
        raise JobError(
            f"no CSV or Parquet file in the data set (found: {[p.name for p in files][:5]}); "
            "give a .csv, .parquet or .pq file"
        )
    return tables


def _user_name(path: Path, location: Path) -> str:
    """The file as the user named it: its path inside their folder, not under /opt/ml."""
    return path.relative_to(location).as_posix() if location.is_dir() else path.name


def _header(path: Path) -> list[str]:
    if TABLE_SUFFIXES[path.suffix.lower()] == "parquet":
        import pyarrow.parquet as pq

        return [str(n) for n in pq.read_schema(path).names if not n.startswith("__index_level_")]
    with path.open(newline="", encoding="utf-8-sig") as handle:
        first = next(csv.reader(handle, skipinitialspace=True), [])
    return [cell.strip() for cell in first]


def check_headers(location: Path, files: list[Path]) -> list[str]:
    """The one header all files share; duplicate names or differing headers are errors that
    name the files and columns."""
    headers: dict[str, list[str]] = {}
    for path in files:
        name = _user_name(path, location)
        try:
            header = _header(path)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise JobError(f"cannot read the header of {name}: {exc}".splitlines()[0]) from exc
        duplicates = sorted({c for c in header if header.count(c) > 1})
        if duplicates:
            raise JobError(
                f"{name} has duplicate column names {duplicates}; give every column its own name"
            )
        headers[name] = header
    (first, reference), *others = headers.items()
    differing = []
    for name, header in others:
        if set(header) != set(reference):
            missing = sorted(set(reference) - set(header))
            extra = sorted(set(header) - set(reference))
            differing.append(f"{name} lacks {missing} and adds {extra}")
    if differing:
        raise JobError(
            f"the files of the data set do not share one header: against {first}, "
            + "; ".join(differing)
            + ". Put only files of one table in the folder, with the same columns"
        )
    return reference


def read_table(location: Path) -> pd.DataFrame:
    """Read one file or every CSV/Parquet file of a directory (a SageMaker S3Prefix input)."""
    files = table_files(location)
    if any(TABLE_SUFFIXES[p.suffix.lower()] == "csv" for p in files) or len(files) > 1:
        check_headers(location, files)
    frames = []
    for path in files:
        name = _user_name(path, location)
        try:
            if TABLE_SUFFIXES[path.suffix.lower()] == "csv":
                # One parser thread: pandas' parallel reader holds every chunk and their
                # concatenation at once (1M rows: 555 MB above the start for a 201 MB table,
                # against 360 MB for one thread, which is 0.7 s slower), and the read was
                # Preprocess's peak.
                with pd.option_context("mode.max_threads", 1):
                    frame = pd.read_csv(path, skipinitialspace=True)
            else:
                frame = pd.read_parquet(path)
        except pd.errors.EmptyDataError as exc:
            raise JobError(f"{name} is empty: it has no header and no rows") from exc
        except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
            raise JobError(f"cannot parse {name}: {exc}".splitlines()[0]) from exc
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if table.empty:
        names = ", ".join(_user_name(p, location) for p in files)
        raise JobError(f"the data set ({names}) has a header but no rows")
    return table


def _distinct_texts(column: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Each distinct non-missing cell as stripped text, and how many cells hold it: the kind
    checks below parse the distinct values once (a million-row category column has a handful),
    weighted by their counts, instead of every cell."""
    counts = column.dropna().value_counts(sort=False)
    texts = pd.Series(counts.index.astype(str), dtype=object).str.strip()
    return texts, counts.to_numpy()


def _share(matches: pd.Series, weights: np.ndarray) -> float:
    return float((matches.to_numpy(dtype=bool) * weights).sum() / weights.sum())


def _looks_like_dates(column: pd.Series) -> bool:
    texts, weights = _distinct_texts(column)
    if texts.empty or not _share(texts.str.match(_DATE_RE), weights) >= 0.95:
        return False
    parsed = pd.to_datetime(texts, errors="coerce", format="mixed")
    return _share(parsed.notna(), weights) >= 0.95


def _coerce_numeric(name: str, column: pd.Series, *, declared: bool) -> pd.Series:
    numbers = pd.to_numeric(column, errors="coerce")
    bad = column.notna() & numbers.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in column[bad].astype(str).unique()[:3])
        how = (
            "it was declared numeric"
            if declared
            else f"{(~bad & column.notna()).sum()} of {column.notna().sum()} values are numbers"
        )
        raise JobError(
            f"column {name!r} has non-numeric values ({examples}) in {int(bad.sum())} rows "
            f"but {how}; fix those cells or declare it with --column-types {name}=categorical"
        )
    return numbers


def infer_kind(name: str, column: pd.Series) -> Kind:
    if pd.api.types.is_bool_dtype(column):
        return "categorical"
    if pd.api.types.is_numeric_dtype(column):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(column) or _looks_like_dates(column):
        return "datetime"
    texts, weights = _distinct_texts(column)
    if (
        not texts.empty
        and _share(pd.to_numeric(texts, errors="coerce").notna(), weights) >= NUMERIC_LOOKING_SHARE
    ):
        _coerce_numeric(name, column, declared=False)  # raises with the offending values
    return "categorical"


def infer_problem_type(target: pd.Series) -> ProblemType:
    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        return "classification"
    integral = bool(np.all(np.mod(target.to_numpy(dtype=float), 1) == 0))
    if integral and target.nunique() <= MAX_CLASSES_FOR_INTEGER_TARGET:
        return "classification"
    return "regression"


def prepare(table: pd.DataFrame, spec: DataSpec) -> tuple[pd.DataFrame, Schema]:
    """Validate and clean a raw table; return the modelling table and its schema."""
    if spec.target not in table.columns:
        raise JobError(
            f"target column {spec.target!r} not found; the columns are {list(table.columns)}. "
            "Pass the right name with --target"
        )
    unknown = sorted(set(spec.column_types) - set(table.columns))
    if unknown:
        raise JobError(f"--column-types names columns that are not in the data: {unknown}")

    missing_target = table[spec.target].isna() | (table[spec.target].astype(str).str.strip() == "")
    if missing_target.all():
        raise JobError(f"every row has an empty target {spec.target!r}; nothing to learn from")
    if missing_target.any():
        log.warning(
            "dropped %d rows with a missing target %r", int(missing_target.sum()), spec.target
        )
        table = table.loc[~missing_target].reset_index(drop=True)

    target = table[spec.target]
    if spec.problem_type == "regression":
        target = _coerce_numeric(spec.target, target, declared=True)
    problem_type: ProblemType = (
        infer_problem_type(target) if spec.problem_type == "auto" else spec.problem_type
    )
    if problem_type == "classification":
        target = target.astype(str).str.strip()
        counts = target.value_counts()
        if len(counts) < 2:
            raise JobError(
                f"target {spec.target!r} has one class ({counts.index[0]!r}); a classifier needs two"
            )
        lonely = counts[counts < 2]
        if not lonely.empty:
            raise JobError(
                f"classes {list(lonely.index)} of {spec.target!r} have a single row; a stratified "
                "split needs at least 2 rows per class: remove them or merge them into another class"
            )
    table = table.assign(**{spec.target: target})

    kinds: dict[str, Kind] = {}
    for name in table.columns.drop(spec.target):
        column = table[name]
        if column.isna().all():
            kinds[name] = spec.column_types.get(name, "categorical")
            continue
        declared = spec.column_types.get(name)
        kind = declared or infer_kind(name, column)
        if kind == "numeric":
            numbers = _coerce_numeric(name, column, declared=declared is not None)
            if numbers.dtype != column.dtype:  # writing a column back copies its whole block
                table[name] = numbers
        elif kind == "categorical":
            table[name] = category_texts(column)  # the form the model server will send
        kinds[name] = kind
    kept, selection = feature_selection.select(table, kinds, set(spec.column_types))
    features: dict[str, Kind] = {name: kinds[name] for name in kept}
    for warning in selection.warnings:
        log.warning("%s", warning)
    if not features:
        raise JobError(
            "no usable feature column is left after dropping identifiers and empty columns"
        )

    classes = (
        sorted(table[spec.target].unique().tolist()) if problem_type == "classification" else None
    )
    schema = Schema(
        spec.target, problem_type, features, classes, selection.dropped, selection.record()
    )
    return table[[*features, spec.target]], schema


def profile(table: pd.DataFrame, schema: Schema, *, raw_rows: int, sha256: str) -> dict[str, Any]:
    """A JSON-ready description of the modelling table."""
    target = table[schema.target]
    if schema.problem_type == "classification":
        target_summary: dict[str, Any] = {
            "class_counts": target.value_counts().sort_index().to_dict()
        }
    else:
        target_summary = {k: float(v) for k, v in target.describe().items()}
    numeric = schema.columns_of("numeric")
    categorical = schema.columns_of("categorical")
    return {
        "dataset": {"sha256": sha256, "raw_rows": raw_rows, "rows": len(table)},
        "problem_type": schema.problem_type,
        "target": {"name": schema.target, **target_summary},
        "missing_values": {c: int(n) for c, n in table.isna().sum().items()},
        "numeric_summary": {
            c: {k: (None if pd.isna(v) else float(v)) for k, v in table[c].describe().items()}
            for c in numeric
        },
        "categorical_summary": {
            c: {
                "distinct": int(table[c].nunique()),
                "top": table[c].value_counts().head(10).to_dict(),
            }
            for c in categorical
        },
        "datetime_summary": {c: _date_summary(table[c]) for c in schema.columns_of("datetime")},
        "features": schema.to_dict()["features"],
        "dropped_columns": schema.dropped,
        "feature_selection": schema.selection,
        "warnings": schema.selection.get("warnings", []),
    }


def _date_summary(column: pd.Series) -> dict[str, Any]:
    """Range and spread of a date column, and how many cells the model cannot read as dates."""
    when = parse_dates(column)
    present = when.dropna()
    return {
        "min": None if present.empty else present.min().isoformat(),
        "max": None if present.empty else present.max().isoformat(),
        "distinct": int(column.nunique()),
        "unparseable": int((column.notna() & when.isna()).sum()),
        "years": {str(y): int(n) for y, n in present.dt.year.value_counts().sort_index().items()},
    }


def split(
    table: pd.DataFrame, schema: Schema, *, validation: float, test: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic train / validation / test split, stratified for classification: the row
    numbers of each part (the caller takes one part at a time from the table)."""
    if not (0 < validation < 1 and 0 < test < 1 and validation + test < 1):
        raise JobError("validation and test fractions must be in (0, 1) and add up to less than 1")
    holdout = validation + test
    # Stratified on the classes' codes in sorted order: scikit-learn numbers the labels so itself
    # (the same split), without sorting a million strings twice.
    rows = np.arange(len(table))
    classify = schema.problem_type == "classification"
    codes = pd.factorize(table[schema.target], sort=True)[0] if classify else None
    try:
        train, rest = train_test_split(rows, test_size=holdout, random_state=seed, stratify=codes)
        val, tst = train_test_split(
            rest,
            test_size=test / holdout,
            random_state=seed,
            stratify=None if codes is None else codes[rest],
        )
    except ValueError as exc:
        raise JobError(
            f"cannot split {len(table)} rows into train/validation/test: {exc}. "
            "Give more rows or smaller --validation-fraction/--test-fraction"
        ) from exc
    return train, val, tst


# Rows per Parquet row group when a part of the split is written: a batch at a time is copied
# out of the table and converted to Arrow, not the whole part twice (pandas' rows, then Arrow's
# columns). 1M rows: writing the train part peaked 407 MB above the table, in batches 258 MB.
PART_BATCH_ROWS = 100_000


def write_part(table: pd.DataFrame, rows: np.ndarray, path: Path) -> None:
    """Write the table's ``rows`` (a part of the split) to a Parquet file, a batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(table.iloc[:0], preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, max(len(rows), 1), PART_BATCH_ROWS):
            batch = table.iloc[rows[start : start + PART_BATCH_ROWS]]
            writer.write_table(pa.Table.from_pandas(batch, schema=schema, preserve_index=False))


def read_split(path: Path, schema: Schema) -> pd.DataFrame:
    """Read a split written by preprocess (Parquet, or CSV from older runs), with the column
    types the schema fixed."""
    dtypes: dict[str, Any] = {n: str for n, k in schema.features.items() if k != "numeric"}
    if schema.problem_type == "classification":
        dtypes[schema.target] = str
    files = table_files(path)
    frames = [
        pd.read_parquet(f).astype(dtypes)
        if TABLE_SUFFIXES[f.suffix.lower()] == "parquet"
        else pd.read_csv(f, dtype=dtypes, keep_default_na=True)
        for f in files
    ]
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    missing = [c for c in [*schema.features, schema.target] if c not in table.columns]
    if missing:
        raise JobError(f"{path} lacks columns {missing} that the schema lists; rerun preprocess")
    return table

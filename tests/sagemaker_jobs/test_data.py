"""The pure data core of the preprocess job: read, prepare, split, profile, read back."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sagemaker_jobs.contract import JobError
from sagemaker_jobs.data import (
    DataSpec,
    Schema,
    infer_kind,
    parse_column_types,
    prepare,
    profile,
    read_split,
    read_table,
    split,
    write_part,
)
from sagemaker_jobs.digests import dataset_sha256, file_entries

LOGGER = "sagemaker_jobs.data"


def _frame(n: int = 30, **extra: list[object]) -> pd.DataFrame:
    """A small valid table: one numeric feature, one categorical feature, a two-class target."""
    data: dict[str, list[object]] = {
        "size": [float(i % 7) + 0.5 for i in range(n)],
        "colour": [("red", "green", "blue")[i % 3] for i in range(n)],
        "label": [("yes", "no")[i % 2] for i in range(n)],
    }
    data.update(extra)
    return pd.DataFrame(data)


# read_table ---------------------------------------------------------------------------------


def test_read_table_reads_a_csv_file_and_strips_spaces_after_commas(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a, b\n1, x\n2, y\n", encoding="utf-8")

    table = read_table(path)

    assert list(table.columns) == ["a", "b"]
    assert table["a"].tolist() == [1, 2]
    assert table["b"].tolist() == ["x", "y"]


def test_read_table_reads_a_parquet_file(tmp_path: Path) -> None:
    source = pd.DataFrame({"a": [1.5, 2.5, 3.5], "b": ["x", "y", "z"]})
    path = tmp_path / "data.parquet"
    source.to_parquet(path)

    table = read_table(path)

    assert table["a"].tolist() == [1.5, 2.5, 3.5]
    assert table["b"].tolist() == ["x", "y", "z"]


def test_read_table_concatenates_every_csv_of_a_directory_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "part-2.csv").write_text("a,b\n3,z\n", encoding="utf-8")
    (tmp_path / "part-1.csv").write_text("a,b\n1,x\n2,y\n", encoding="utf-8")
    (tmp_path / "README.txt").write_text("not a table", encoding="utf-8")

    table = read_table(tmp_path)

    assert table["a"].tolist() == [1, 2, 3]
    assert table["b"].tolist() == ["x", "y", "z"]
    assert list(table.index) == [0, 1, 2]


def test_read_table_rejects_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")

    with pytest.raises(JobError, match="empty") as caught:
        read_table(path)
    assert "empty.csv" in str(caught.value)


def test_read_table_rejects_a_header_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("a,b,label\n", encoding="utf-8")

    with pytest.raises(JobError, match="header but no rows"):
        read_table(path)


def test_read_table_rejects_a_directory_without_tables(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    (tmp_path / "data.json").write_text("{}", encoding="utf-8")

    with pytest.raises(JobError, match="no CSV or Parquet file") as caught:
        read_table(tmp_path)
    assert "notes.txt" in str(caught.value)


def test_read_table_rejects_a_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"

    with pytest.raises(JobError, match="does not exist") as caught:
        read_table(missing)
    assert "nope.csv" in str(caught.value) and str(tmp_path) not in str(caught.value)


# prepare: target ----------------------------------------------------------------------------


def test_prepare_drops_rows_with_a_missing_target_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = _frame(20)
    table.loc[3, "label"] = None
    table.loc[8, "label"] = "   "

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        prepared, schema = prepare(table, DataSpec(target="label"))

    assert len(prepared) == 18
    assert prepared["label"].notna().all()
    assert set(prepared["label"]) == {"yes", "no"}
    assert schema.classes == ["no", "yes"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "dropped 2 rows with a missing target 'label'" in r.getMessage() for r in warnings
    ), [r.getMessage() for r in warnings]


def test_prepare_rejects_a_target_that_is_always_missing() -> None:
    table = _frame(10)
    table["label"] = None

    with pytest.raises(JobError, match="every row has an empty target 'label'"):
        prepare(table, DataSpec(target="label"))


def test_prepare_rejects_a_missing_target_column_and_lists_the_columns() -> None:
    with pytest.raises(JobError) as caught:
        prepare(_frame(10), DataSpec(target="outcome"))

    message = str(caught.value)
    assert "'outcome'" in message
    assert "['size', 'colour', 'label']" in message


def test_prepare_rejects_a_class_with_a_single_row() -> None:
    table = _frame(20)
    table.loc[5, "label"] = "maybe"

    with pytest.raises(JobError, match="single row") as caught:
        prepare(table, DataSpec(target="label"))
    assert "'maybe'" in str(caught.value)


def test_prepare_rejects_a_target_with_one_class() -> None:
    table = _frame(10)
    table["label"] = "yes"

    with pytest.raises(JobError, match="one class"):
        prepare(table, DataSpec(target="label"))


@pytest.mark.parametrize(
    ("target", "expected", "classes"),
    [
        pytest.param(["cat", "dog"] * 15, "classification", ["cat", "dog"], id="strings"),
        pytest.param([i * 0.37 + 0.01 for i in range(30)], "regression", None, id="floats"),
        pytest.param(
            [i % 3 for i in range(30)], "classification", ["0", "1", "2"], id="small-ints"
        ),
        pytest.param(list(range(0, 60, 2)), "regression", None, id="many-ints"),
        pytest.param([1.0, 2.0] * 15, "classification", ["1.0", "2.0"], id="integral-floats"),
    ],
)
def test_prepare_infers_the_problem_type_from_the_target(
    target: list[object], expected: str, classes: list[str] | None
) -> None:
    table = _frame(30, label=target)

    prepared, schema = prepare(table, DataSpec(target="label"))

    assert schema.problem_type == expected
    assert schema.classes == classes
    if expected == "classification":
        assert prepared["label"].map(type).eq(str).all()
    else:
        assert pd.api.types.is_numeric_dtype(prepared["label"])


def test_prepare_honours_a_declared_problem_type() -> None:
    table = _frame(30, label=[i % 3 for i in range(30)])

    prepared, schema = prepare(table, DataSpec(target="label", problem_type="regression"))

    assert schema.problem_type == "regression"
    assert schema.classes is None
    assert prepared["label"].tolist() == [i % 3 for i in range(30)]


def test_prepare_rejects_a_text_target_declared_regression() -> None:
    with pytest.raises(JobError, match="declared numeric") as caught:
        prepare(_frame(10), DataSpec(target="label", problem_type="regression"))
    assert "'label'" in str(caught.value)


# prepare: features --------------------------------------------------------------------------


def test_prepare_drops_an_identifier_column(caplog: pytest.LogCaptureFixture) -> None:
    table = _frame(25, customer=[f"cust-{i:04d}" for i in range(25)])

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        prepared, schema = prepare(table, DataSpec(target="label"))

    assert schema.dropped == {"customer": "identifier"}
    assert "customer" not in schema.features
    assert "customer" not in prepared.columns
    assert any("'customer'" in r.getMessage() for r in caplog.records)


def test_prepare_drops_a_row_number_column_but_keeps_unique_floats() -> None:
    table = _frame(25, row=list(range(25)), reading=[i * 1.13 for i in range(25)])

    _, schema = prepare(table, DataSpec(target="label"))

    assert schema.dropped == {"row": "identifier"}
    assert schema.features["reading"] == "numeric"


def test_prepare_keeps_unique_strings_when_there_are_too_few_rows_to_tell() -> None:
    table = _frame(10, name=[f"n{i}" for i in range(10)])

    _, schema = prepare(table, DataSpec(target="label"))

    assert schema.features["name"] == "categorical"
    assert schema.dropped == {}


def test_prepare_drops_empty_and_constant_columns() -> None:
    table = _frame(20, blank=[None] * 20, same=["x"] * 20)

    prepared, schema = prepare(table, DataSpec(target="label"))

    assert schema.dropped == {"blank": "empty", "same": "constant"}
    assert list(prepared.columns) == ["size", "colour", "label"]


def test_prepare_rejects_a_table_without_usable_features() -> None:
    table = pd.DataFrame({"id": [f"row{i}" for i in range(25)], "label": ["a", "b"] * 12 + ["a"]})

    with pytest.raises(JobError, match="no usable feature column"):
        prepare(table, DataSpec(target="label"))


def test_prepare_infers_kinds_including_dates() -> None:
    dates = [f"2024-{(i % 12) + 1:02d}-{(i % 28) + 1:02d}" for i in range(30)]
    table = _frame(30, signup=dates, flag=[i % 2 == 0 for i in range(30)])

    prepared, schema = prepare(table, DataSpec(target="label"))

    assert schema.features == {
        "size": "numeric",
        "colour": "categorical",
        "signup": "datetime",
        "flag": "categorical",
    }
    assert schema.columns_of("datetime") == ["signup"]
    assert list(prepared.columns) == ["size", "colour", "signup", "flag", "label"]
    assert prepared["signup"].tolist() == dates


def test_prepare_rejects_a_numeric_column_with_a_few_bad_cells() -> None:
    price = [str(float(i)) for i in range(19)] + ["oops"]
    table = _frame(20, price=price)

    with pytest.raises(JobError) as caught:
        prepare(table, DataSpec(target="label"))

    message = str(caught.value)
    assert "'price'" in message
    assert "'oops'" in message
    assert "in 1 rows" in message
    assert "19 of 20 values are numbers" in message
    assert "--column-types price=categorical" in message


def test_prepare_treats_mostly_text_columns_as_categorical() -> None:
    # 2 of 20 values look like numbers: far below the numeric-looking share, so not an error.
    city = ["paris", "rome", "oslo", "lima", "kyiv"] * 3 + ["bonn", "nice", "bern", "1", "2"]
    _, schema = prepare(_frame(20, city=city), DataSpec(target="label"))

    assert schema.features["city"] == "categorical"


def test_prepare_uses_declared_column_types() -> None:
    zip_codes = [10001 + (i % 4) for i in range(20)]
    amount = [str(i % 5) for i in range(20)]
    table = _frame(20, zip=zip_codes, amount=amount)
    spec = DataSpec(target="label", column_types={"zip": "categorical", "amount": "numeric"})

    prepared, schema = prepare(table, spec)

    assert schema.features["zip"] == "categorical"
    assert schema.features["amount"] == "numeric"
    assert prepared["amount"].tolist() == [float(i % 5) for i in range(20)]
    assert pd.api.types.is_numeric_dtype(prepared["amount"])


def test_prepare_names_the_bad_cells_of_a_column_declared_numeric() -> None:
    spec = DataSpec(target="label", column_types={"colour": "numeric"})

    with pytest.raises(JobError, match="declared numeric") as caught:
        prepare(_frame(12), spec)
    assert "'colour'" in str(caught.value)


def test_prepare_rejects_declared_types_for_unknown_columns() -> None:
    spec = DataSpec(target="label", column_types={"ghost": "numeric"})

    with pytest.raises(JobError, match="not in the data") as caught:
        prepare(_frame(10), spec)
    assert "ghost" in str(caught.value)


def test_parse_column_types_reads_name_kind_pairs() -> None:
    parsed = parse_column_types(" age=numeric, city = categorical,,joined=datetime ")

    assert parsed == {"age": "numeric", "city": "categorical", "joined": "datetime"}
    assert parse_column_types("") == {}


@pytest.mark.parametrize("text", ["age", "age=text", "age=numeric,city"])
def test_parse_column_types_rejects_bad_items(text: str) -> None:
    with pytest.raises(JobError, match="NAME=KIND") as caught:
        parse_column_types(text)
    assert "numeric, categorical, datetime" in str(caught.value)


# split --------------------------------------------------------------------------------------


def _classification_table(n: int = 100) -> tuple[pd.DataFrame, Schema]:
    labels = ["a"] * (n * 4 // 10) + ["b"] * (n * 3 // 10)
    labels += ["c"] * (n - len(labels))
    table = pd.DataFrame({"x": np.arange(n, dtype=float), "label": labels})
    schema = Schema("label", "classification", {"x": "numeric"}, ["a", "b", "c"])
    return table, schema


def _parts(table: pd.DataFrame, schema: Schema, **fractions: Any) -> list[pd.DataFrame]:
    """The split's parts as Preprocess takes them from the table."""
    return [table.iloc[rows] for rows in split(table, schema, **fractions)]


def test_split_is_deterministic_for_a_seed() -> None:
    table, schema = _classification_table()

    first = _parts(table, schema, validation=0.2, test=0.2, seed=7)
    second = _parts(table, schema, validation=0.2, test=0.2, seed=7)
    other = _parts(table, schema, validation=0.2, test=0.2, seed=8)

    for a, b in zip(first, second, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert list(first[0].index) != list(other[0].index)


def test_split_is_stratified_disjoint_and_complete() -> None:
    table, schema = _classification_table()

    train, val, tst = _parts(table, schema, validation=0.2, test=0.2, seed=1)

    for part in (train, val, tst):
        assert set(part["label"]) == {"a", "b", "c"}
    assert set(train.index) | set(val.index) | set(tst.index) == set(table.index)
    assert not set(train.index) & set(val.index)
    assert not set(train.index) & set(tst.index)
    assert not set(val.index) & set(tst.index)
    # Stratified: each part keeps the 40/30/30 class shares.
    assert train["label"].value_counts().to_dict() == {"a": 24, "b": 18, "c": 18}


@pytest.mark.parametrize(("validation", "test"), [(0.2, 0.2), (0.1, 0.3), (0.15, 0.15)])
def test_split_sizes_follow_the_fractions(validation: float, test: float) -> None:
    table, schema = _classification_table(200)

    train, val, tst = split(table, schema, validation=validation, test=test, seed=3)

    assert abs(len(val) - 200 * validation) <= 1
    assert abs(len(tst) - 200 * test) <= 1
    assert len(train) + len(val) + len(tst) == 200


def test_split_works_for_regression_without_stratifying() -> None:
    table = pd.DataFrame({"x": np.arange(50, dtype=float), "y": np.linspace(0, 1, 50)})
    schema = Schema("y", "regression", {"x": "numeric"})

    train, val, tst = split(table, schema, validation=0.2, test=0.2, seed=0)

    assert (len(train), len(val), len(tst)) == (30, 10, 10)


@pytest.mark.parametrize(
    ("validation", "test"), [(0.0, 0.2), (0.2, 0.0), (0.5, 0.5), (1.2, 0.1), (0.2, -0.1)]
)
def test_split_rejects_bad_fractions(validation: float, test: float) -> None:
    table, schema = _classification_table()

    with pytest.raises(JobError, match="fractions"):
        split(table, schema, validation=validation, test=test, seed=0)


def test_split_explains_when_there_are_too_few_rows() -> None:
    table = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "label": ["a", "a", "b", "b"]})
    schema = Schema("label", "classification", {"x": "numeric"}, ["a", "b"])

    with pytest.raises(JobError, match="cannot split 4 rows"):
        split(table, schema, validation=0.2, test=0.2, seed=0)


# profile ------------------------------------------------------------------------------------


def test_profile_describes_a_classification_table(tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text("size,colour,label\n", encoding="utf-8")
    digest = dataset_sha256(file_entries([raw], tmp_path))
    assert digest == hashlib.sha256(raw.read_bytes()).hexdigest()
    table = pd.DataFrame(
        {
            "size": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
            "colour": ["red", None, "red", "blue", None, None],
            "label": ["a", "b", "a", "b", "a", "a"],
        }
    )
    schema = Schema(
        "label", "classification", {"size": "numeric", "colour": "categorical"}, ["a", "b"]
    )

    result = profile(table, schema, raw_rows=9, sha256=digest)

    assert result["dataset"] == {"sha256": digest, "raw_rows": 9, "rows": 6}
    assert result["problem_type"] == "classification"
    assert result["target"] == {"name": "label", "class_counts": {"a": 4, "b": 2}}
    assert result["missing_values"] == {"size": 1, "colour": 3, "label": 0}
    summary = result["numeric_summary"]["size"]
    assert set(summary) == {"count", "mean", "std", "min", "25%", "50%", "75%", "max"}
    assert summary["count"] == 5.0
    assert summary["mean"] == pytest.approx(3.6)
    assert summary["min"] == 1.0
    assert summary["max"] == 6.0
    assert result["categorical_summary"] == {
        "colour": {"distinct": 2, "top": {"red": 2, "blue": 1}}
    }
    assert result["features"] == [
        {"name": "size", "kind": "numeric"},
        {"name": "colour", "kind": "categorical"},
    ]
    assert result["dropped_columns"] == {}


def test_profile_summarises_a_regression_target() -> None:
    table = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [10.0, 20.0, 30.0, 40.0]})
    schema = Schema("y", "regression", {"x": "numeric"}, dropped={"id": "identifier"})

    result = profile(table, schema, raw_rows=4, sha256="abc")

    assert result["target"]["name"] == "y"
    assert result["target"]["mean"] == 25.0
    assert result["target"]["max"] == 40.0
    assert "class_counts" not in result["target"]
    assert result["dropped_columns"] == {"id": "identifier"}


# read_split ---------------------------------------------------------------------------------


def test_read_split_reads_categorical_columns_and_class_labels_as_strings(
    tmp_path: Path,
) -> None:
    path = tmp_path / "train.csv"
    path.write_text(
        "code,amount,signup,label\n007,1.5,2024-01-02,0\n012,2.5,2024-02-03,1\n,3,,0\n",
        encoding="utf-8",
    )
    schema = Schema(
        "label",
        "classification",
        {"code": "categorical", "amount": "numeric", "signup": "datetime"},
        ["0", "1"],
    )

    table = read_split(path, schema)

    assert table["code"].tolist()[:2] == ["007", "012"]
    assert pd.isna(table["code"].iloc[2])
    assert pd.api.types.is_string_dtype(table["code"])
    assert table["signup"].tolist()[:2] == ["2024-01-02", "2024-02-03"]
    assert table["label"].tolist() == ["0", "1", "0"]
    assert table["amount"].tolist() == [1.5, 2.5, 3.0]


def test_read_split_round_trips_a_schema_and_rejects_missing_columns(tmp_path: Path) -> None:
    schema = Schema("y", "regression", {"a": "numeric", "b": "categorical"})
    assert Schema.from_dict(schema.to_dict()) == schema
    path = tmp_path / "part.csv"
    path.write_text("a,y\n1,2\n", encoding="utf-8")

    with pytest.raises(JobError, match=r"lacks columns \['b'\]"):
        read_split(path, schema)


def test_a_part_is_written_a_batch_of_rows_at_a_time_and_reads_back_as_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    from sagemaker_jobs import data

    monkeypatch.setattr(data, "PART_BATCH_ROWS", 4)
    table = pd.DataFrame(
        {
            "x": [0.5, np.nan, 2.0, 3.5, 4.0, 5.25, 6.0, 7.0, 8.5, 9.0],
            "c": pd.Series(["a", None, "b", "c", "a", "b", "c", "a", None, "b"], dtype="str"),
            "y": pd.Series(list("pqpqpqpqpq"), dtype="str"),
        }
    )
    rows = np.array([9, 0, 3, 5, 7, 1, 2])
    path = tmp_path / "train" / "train.parquet"

    write_part(table, rows, path)

    assert pq.ParquetFile(path).metadata.num_row_groups == 2  # 4 + 3 rows
    pd.testing.assert_frame_equal(pd.read_parquet(path), table.iloc[rows].reset_index(drop=True))
    write_part(table, rows[:0], path)  # an empty part still has the table's columns and types
    pd.testing.assert_frame_equal(pd.read_parquet(path), table.iloc[:0])


@pytest.mark.parametrize(
    "cells",
    [
        [" a", "NA", None, np.nan, "TRUE", "b ", "", "x"] * 3,
        [True, 1, 1.0, "1", None],  # equal to a hash table, not as categories
        [1.0, 2.0, np.nan],
        ["NA", None],  # nothing but missing markers
        pd.Series(["a", None, "b"], dtype="str"),
    ],
)
def test_category_texts_per_distinct_value_equal_the_cell_by_cell_map(cells: Any) -> None:
    from sagemaker_jobs.features import category_text, category_texts

    column = pd.Series(cells, name="c")
    pd.testing.assert_series_equal(category_texts(column), column.map(category_text))


def test_kinds_are_judged_by_the_share_of_cells_not_of_distinct_values() -> None:
    """The kind checks parse each distinct value once but weigh it by its cells: 96 date cells
    and 4 distinct other words are a date column (95% rule); 94 and 6 are not."""
    dates = ["2024-01-05"] * 96 + ["w", "x", "y", "z"]
    assert infer_kind("d", pd.Series(dates)) == "datetime"
    assert infer_kind("d", pd.Series(["2024-01-05"] * 94 + list("uvwxyz"))) == "categorical"
    numbers = ["1"] * 97 + ["a", "b", "c"]  # numbers in nearly every cell, three typos
    with pytest.raises(JobError, match="non-numeric values"):
        infer_kind("n", pd.Series(numbers))

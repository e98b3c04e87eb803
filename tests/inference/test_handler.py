"""The handler: every input and output format, probabilities, and each way input can be wrong."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from inference.compiled import Columns
from inference.errors import BadRequest, NotAcceptable, UnsupportedContentType
from inference.handler import ModelHandler, model_fn, wants_probabilities

from .conftest import FEATURES, ROW

RECORD = dict(zip(FEATURES, ["Torgersen", 39.1, 18.7, 181, 3750, "male", 2007], strict=True))
GENTOO = dict(
    RECORD,
    island="Biscoe",
    bill_length_mm=50,
    bill_depth_mm=15,
    flipper_length_mm=220,
    body_mass_g=5000,
)


@pytest.fixture(scope="module")
def handler(model_dir: Path) -> ModelHandler:
    return model_fn(model_dir)


def predict(handler: ModelHandler, body: bytes, content_type: str) -> list:
    return handler.predict_fn(handler.input_fn(body, content_type)).labels


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, rows=np.zeros((1, 7)))
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (f"{ROW}\n".encode(), "text/csv"),
        (f"{ROW}".encode(), "text/csv; charset=utf-8"),
        (f"{','.join(FEATURES)}\n{ROW}\n".encode(), "text/csv"),  # header row matching the features
        (
            f"{','.join(reversed(FEATURES))}\n{','.join(reversed(ROW.split(',')))}\n".encode(),
            "text/csv",
        ),
        (json.dumps([ROW.split(",")]).encode(), "application/json"),
        (json.dumps(ROW.split(",")).encode(), "application/json"),  # a single row
        (json.dumps([RECORD]).encode(), "application/json"),
        (json.dumps(RECORD).encode(), "application/json"),  # a single record
        (json.dumps({"instances": [RECORD]}).encode(), "application/json"),
        (json.dumps({"instances": [ROW.split(",")]}).encode(), None),  # no Content-Type means JSON
        (json.dumps(RECORD).encode() + b"\n", "application/jsonlines"),
        (_npy(np.array([ROW.split(",")])), "application/x-npy"),
    ],
)
def test_every_input_format_gives_the_same_prediction(
    handler: ModelHandler, body: bytes, content_type: str | None
) -> None:
    assert predict(handler, body, content_type) == ["Adelie"]  # type: ignore[arg-type]


def test_many_rows_and_missing_values(handler: ModelHandler) -> None:
    body = f"{ROW}\nBiscoe,50,15,220,5000,female,2008\nDream,,,,,,\nDream,NA,NaN,null,N/A,NA,2009\n".encode()
    assert predict(handler, body, "text/csv")[:2] == ["Adelie", "Gentoo"]
    lines = (json.dumps(RECORD) + "\n" + json.dumps(GENTOO) + "\n\n").encode()
    assert predict(handler, lines, "application/jsonlines") == ["Adelie", "Gentoo"]


def test_outputs_and_probabilities(handler: ModelHandler) -> None:
    frame = handler.input_fn(f"{ROW}\nBiscoe,50,15,220,5000,female,2008".encode(), "text/csv")
    plain = handler.predict_fn(frame)
    assert json.loads(handler.output_fn(plain, "application/json")) == {
        "predictions": ["Adelie", "Gentoo"]
    }
    assert handler.output_fn(plain, "text/csv") == b"Adelie\nGentoo\n"
    assert handler.output_fn(plain, "application/jsonlines").splitlines() == [
        b'{"prediction": "Adelie"}',
        b'{"prediction": "Gentoo"}',
    ]
    detailed = handler.predict_fn(frame, probabilities=True)
    document = json.loads(handler.output_fn(detailed, "application/json"))
    assert document["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert all(abs(sum(p) - 1) < 1e-3 for p in document["probabilities"])
    first_line = handler.output_fn(detailed, "text/csv").splitlines()[0].decode().split(",")
    assert first_line[0] == "Adelie" and len(first_line) == 4
    record = json.loads(handler.output_fn(detailed, "application/jsonlines").splitlines()[1])
    assert set(record["probabilities"]) == {"Adelie", "Chinstrap", "Gentoo"}
    with pytest.raises(NotAcceptable, match="image/png"):
        handler.output_fn(plain, "image/png")


def test_probabilities_are_asked_by_accept_parameter_or_custom_attribute() -> None:
    assert wants_probabilities({"probabilities": "true"}, None)
    assert wants_probabilities({}, "trace=abc; probabilities=true")
    assert not wants_probabilities({}, "probabilities=false")
    assert not wants_probabilities({}, None)


@pytest.mark.parametrize(
    ("body", "content_type", "error", "message"),
    [
        (b"", "text/csv", BadRequest, "body is empty"),
        (b"  \n", "text/csv", BadRequest, "body is empty"),
        (b"1,2,3", "text/csv", BadRequest, "row 1 has 3 values; the model expects 7"),
        (
            ROW.replace("39.1", "long").encode(),
            "text/csv",
            BadRequest,
            "'bill_length_mm' is numeric; 'long'",
        ),
        (ROW.replace("39.1", "inf").encode(), "text/csv", BadRequest, "infinite"),
        (b"{not json", "application/json", BadRequest, "not valid JSON"),
        (b"[]", "application/json", BadRequest, "no rows"),
        (b"42", "application/json", BadRequest, "must be a list of rows"),
        (
            json.dumps([{"island": "Dream"}]).encode(),
            "application/json",
            BadRequest,
            "lacks features",
        ),
        (
            json.dumps([dict(RECORD, bill_length_mm=True)]).encode(),
            "application/json",
            BadRequest,
            "boolean",
        ),
        (b"\xff\xfe\x00bad", "text/csv", BadRequest, "not UTF-8"),
        (b"a,b", "image/png", UnsupportedContentType, "image/png"),
        (
            _npy(np.array([[object()]], dtype=object)),
            "application/x-npy",
            BadRequest,
            "one array, no objects",
        ),
        (b"not npy at all", "application/x-npy", BadRequest, "cannot read the NPY body"),
        (_npy(np.zeros((2, 2, 2))), "application/x-npy", BadRequest, "shape (2, 2, 2)"),
        (b'{"a": 1}\n[1,2', "application/jsonlines", BadRequest, "line 2 is not valid JSON"),
        (b"[[" + b"9" * 5000 + b"]]", "application/json", BadRequest, "not valid JSON"),
        (
            json.dumps([dict(RECORD, body_mass_g=10**400)]).encode(),
            "application/json",
            BadRequest,
            "not a number",
        ),
        (_npz(), "application/x-npy", BadRequest, "one array, no objects"),
        (
            _npy(np.zeros((3, 7))).replace(b"(3, 7)", b"(10000000000, 7)"),
            "application/x-npy",
            BadRequest,
            "larger than the body",
        ),
    ],
)
def test_bad_input_is_a_clear_client_error(
    handler: ModelHandler, body: bytes, content_type: str, error: type, message: str
) -> None:
    with pytest.raises(error) as caught:
        handler.input_fn(body, content_type)
    assert message in str(caught.value)


def test_a_tampered_model_is_refused(model_dir: Path, tmp_path: Path) -> None:
    for item in model_dir.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    with (tmp_path / "model.joblib").open("ab") as handle:
        handle.write(b"x")
    with pytest.raises(RuntimeError, match="does not match the manifest"):
        model_fn(tmp_path)


def test_bring_your_own_model_without_manifest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    X = np.arange(40, dtype=float).reshape(20, 2)
    joblib.dump(
        RandomForestRegressor(n_estimators=5, random_state=0).fit(X, X.sum(axis=1)),
        tmp_path / "model.joblib",
    )
    with caplog.at_level(logging.WARNING):
        handler = model_fn(tmp_path)
    assert "unverified" in caplog.text
    assert len(predict(handler, b"1,2\n3,4\n", "text/csv")) == 2
    with pytest.raises(BadRequest, match="needs 2 values"):
        handler.input_fn(b"1,2,3", "text/csv")
    with pytest.raises(BadRequest, match="no probabilities"):
        handler.predict_fn(handler.input_fn(b"1,2", "text/csv"), probabilities=True)


def test_nothing_to_serve(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="nothing to serve"):
        model_fn(tmp_path)


def test_categories_have_one_text_form_in_training_and_serving() -> None:
    import pandas as pd

    from sagemaker_jobs.data import DataSpec, prepare
    from sagemaker_jobs.features import category_text

    frame = pd.DataFrame(
        {"zip": [111, None, 222] * 10, "flag": [True, False, True] * 10, "y": ["a", "b", "c"] * 10}
    )
    table, _ = prepare(
        frame, DataSpec(target="y", column_types={"zip": "categorical", "flag": "categorical"})
    )
    assert set(table["zip"].dropna()) == {
        "111",
        "222",
    }  # not "111.0": pandas read the column as floats
    assert set(table["flag"]) == {"true", "false"}
    assert [category_text(v) for v in (111, "111", 111.0, "TRUE", True, "NA", None, " x ")] == [
        "111",
        "111",
        "111",
        "true",
        "true",
        None,
        None,
        "x",
    ]


def test_a_pipeline_model_without_its_manifest_is_refused(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes((model_dir / "model.joblib").read_bytes())
    with pytest.raises(RuntimeError, match=r"manifest\.json is missing"):
        model_fn(tmp_path)


def test_the_session_model_is_served_compiled(handler: ModelHandler) -> None:
    assert handler.compiled is not None
    assert "compiled form (onnxruntime" in handler.serving
    assert type(handler.input_fn(f"{ROW}\n".encode(), "text/csv")).__name__ == "Columns"


def test_batch_transform_takes_the_compiled_path(handler: ModelHandler, tmp_path: Path) -> None:
    from inference.transform import transform

    rows = f"{ROW}\nBiscoe,50,15,220,5000,female,2008\nDream,,,,,,\n" * 3
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv").write_text(rows)
    plain = ModelHandler(handler.model, handler.features, handler.classes)
    stats = transform(handler, tmp_path / "in", tmp_path / "out")
    assert stats.records == 9
    expected = plain.predict_fn(plain.input_fn(rows.encode(), "text/csv")).labels
    assert (tmp_path / "out" / "rows.csv.out").read_text().splitlines() == expected
    assert isinstance(handler.input_fn(rows.encode(), "text/csv"), Columns)

"""The scikit-learn serving contract over the trained pipeline: load, parse, predict, format.

``model_fn(model_dir)`` loads the model once (only after its sha256 matches the manifest the
training job wrote) and returns a ``ModelHandler`` whose ``input_fn`` / ``predict_fn`` /
``output_fn`` follow SageMaker's scikit-learn contract. They are bound to the model because
parsing needs the feature names and types. Nothing here knows about HTTP.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from inference.compiled import Columns
from inference.errors import BadRequest, ModelError, NotAcceptable, UnsupportedContentType
from sagemaker_jobs.features import MISSING, category_text, unparseable_dates

if TYPE_CHECKING:
    from inference.compiled import CompiledModel

log = logging.getLogger(__name__)

CSV, JSON, JSONLINES, NPY = (
    "text/csv",
    "application/json",
    "application/jsonlines",
    "application/x-npy",
)
CONTENT_TYPES = (CSV, JSON, JSONLINES, NPY)
ACCEPTS = (JSON, CSV, JSONLINES)
_ALIASES = {"application/x-jsonlines": JSONLINES, "application/jsonl": JSONLINES}


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # numeric | categorical | datetime


@dataclass
class Prediction:
    labels: list[Any]
    probabilities: list[list[float]] | None = None
    classes: list[str] | None = None


def media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """``"text/csv; charset=utf-8"`` -> ``("text/csv", {"charset": "utf-8"})``."""
    if not header:
        return "", {}
    kind, *params = (part.strip() for part in header.split(";"))
    parsed = dict(p.partition("=")[::2] for p in params if "=" in p)
    kind = kind.lower()
    return _ALIASES.get(kind, kind), {k.strip().lower(): v.strip() for k, v in parsed.items()}


def wants_probabilities(accept_params: dict[str, str], custom_attributes: str | None) -> bool:
    """Asked with ``Accept: application/json; probabilities=true`` or the custom attribute
    ``probabilities=true`` (``CustomAttributes`` in boto3's ``invoke_endpoint``)."""
    if accept_params.get("probabilities", "").lower() == "true":
        return True
    for item in (custom_attributes or "").replace(",", ";").split(";"):
        key, _, value = item.partition("=")
        if key.strip().lower() == "probabilities" and value.strip().lower() == "true":
            return True
    return False


class ModelHandler:
    def __init__(
        self,
        model: Any,
        features: list[Feature] | None,
        classes: list[str] | None,
        version: str = "",
        compiled: CompiledModel | None = None,
        serving: str = "scikit-learn",
        input_columns: list[str] | None = None,
    ) -> None:
        self.model = model
        self.features = features  # None: a bring-your-own model without names, fed arrays
        self.classes = classes
        self.version = version
        # Chosen once at load time: every request of this server takes the same path.
        self.compiled = compiled
        self.serving = serving  # how and why, for the startup log
        self._names = [f.name for f in features] if features else None
        self._width = len(features) if features else getattr(model, "n_features_in_", None)
        # Feature selection dropped some of Preprocess's columns: a row of all of them (in their
        # order) is still accepted, and the dropped values are ignored.
        self._inputs = input_columns if input_columns and self._names else None
        self._kept_positions = (
            [self._inputs.index(n) for n in self._names or []] if self._inputs else None
        )

    # input_fn -------------------------------------------------------------------------
    def input_fn(
        self, body: bytes, content_type: str | None
    ) -> Columns | pd.DataFrame | np.ndarray:
        try:
            return self._parse(body, content_type)
        except UnicodeEncodeError as exc:
            # A UTF-8 body holds no surrogates, but a JSON escape ("\ud800") or an NPY string can:
            # half a pair is not text, and pandas and the model cannot encode it.
            bad = exc.object[exc.start : exc.end]
            raise BadRequest(
                f"the input holds {bad!r}, half of a UTF-16 surrogate pair, which is not text; "
                "send whole characters (both halves of a pair, or plain UTF-8)"
            ) from None

    def _parse(self, body: bytes, content_type: str | None) -> Columns | pd.DataFrame | np.ndarray:
        kind, _ = media_type(content_type)
        kind = kind or JSON  # SageMaker: a missing Content-Type means JSON
        if not body or not body.strip():
            raise BadRequest("the request body is empty; send at least one row")
        if kind == NPY:
            return self._frame(self._npy_rows(body), source="npy")
        if kind not in CONTENT_TYPES:
            raise UnsupportedContentType(
                f"content type {kind!r} is not supported; use one of {', '.join(CONTENT_TYPES)}"
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"the body is not UTF-8 text: {exc}") from exc
        if kind == CSV:
            return self._frame(self._csv_rows(text), source="csv")
        if kind == JSON:
            return self._frame(self._json_rows(_loads(text)), source="json")
        # Lines end at "\n" only: str.splitlines() also breaks at U+2028 and other separators,
        # which JSON allows unescaped inside a string.
        return self._frame(
            [
                row
                for i, line in enumerate(text.split("\n"), 1)
                if line.strip()
                for row in self._json_rows(_loads(line, f"line {i}"), single=True)
            ],
            source="jsonlines",
        )

    def _csv_rows(self, text: str) -> list[list[Any]]:
        try:
            rows = [row for row in csv.reader(io.StringIO(text)) if row]
        except csv.Error as exc:
            raise BadRequest(f"cannot parse CSV: {exc}") from exc
        if (
            rows
            and self._names
            and {c.strip() for c in rows[0]}
            in (
                set(self._names),
                set(self._inputs or self._names),
            )
        ):
            header = [c.strip() for c in rows.pop(0)]  # a header row: take columns by name
            order = [header.index(n) for n in self._names]
            rows = [[row[i] for i in order] if len(row) == len(header) else row for row in rows]
        if not rows:
            raise BadRequest("the CSV body has a header but no rows")
        return rows

    def _json_rows(self, document: Any, single: bool = False) -> list[Any]:
        if isinstance(document, dict) and "instances" in document and not single:
            document = document["instances"]
        if isinstance(document, dict) or (
            isinstance(document, list) and document and not isinstance(document[0], (list, dict))
        ):
            return [document]  # one record, or one row of values
        if not isinstance(document, list) or single:
            raise BadRequest(
                'JSON must be a list of rows, a list of records, {"instances": [...]}, or one record'
            )
        if not document:
            raise BadRequest("the JSON body holds no rows")
        return document

    @staticmethod
    def _npy_rows(body: bytes) -> list[Any]:
        stream = io.BytesIO(body)
        try:
            # Check the declared shape against the body before numpy allocates for it.
            fmt = np.lib.format
            version = fmt.read_magic(stream)  # an NPZ archive (or anything else) fails here
            header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = header(stream)
            if int(np.prod(shape, dtype=object)) * dtype.itemsize > len(body):
                raise ValueError(f"the header declares shape {shape}, larger than the body")
            stream.seek(0)
            array = np.load(stream, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise BadRequest(f"cannot read the NPY body (one array, no objects): {exc}") from exc
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[0] == 0:
            raise BadRequest(
                f"NPY input must be a 1-D row or a 2-D array of rows, got shape {array.shape}"
            )
        return list(array.tolist())

    def _frame(self, rows: Sequence[Any], source: str) -> Columns | pd.DataFrame | np.ndarray:
        if self.features is None:
            return self._array(rows)
        names, width = self._names or [], len(self.features)
        matrix: list[Sequence[Any]] = []
        for number, row in enumerate(rows, 1):
            if isinstance(row, dict):
                missing = [n for n in names if n not in row]
                if missing:
                    raise BadRequest(
                        f"record {number} lacks features {missing}; the model needs {names}"
                    )
                row = [row[n] for n in names]
            elif not isinstance(row, (list, tuple)):
                raise BadRequest(
                    f"row {number} is {type(row).__name__}, not a list of values or a record"
                )
            if self._kept_positions and self._inputs and len(row) == len(self._inputs):
                row = [row[i] for i in self._kept_positions]  # the selected ones, in order
            if len(row) != width:
                accepted = (
                    f" or {len(self._inputs)} ({', '.join(self._inputs)})" if self._inputs else ""
                )
                raise BadRequest(
                    f"row {number} has {len(row)} values; the model expects {width} "
                    f"({', '.join(names)}){accepted}"
                )
            matrix.append(row)
        columns: dict[str, Any] = {}
        for index, feature in enumerate(self.features):
            cells = [row[index] for row in matrix]
            if feature.kind == "numeric":
                columns[feature.name] = _number_column(cells, feature.name)
            elif feature.kind == "datetime" and (bad := unparseable_dates(cells)):
                raise BadRequest(
                    f"feature {feature.name!r} is a date; {str(bad[0])[:40]!r} is not one "
                    "(send e.g. 2024-03-31, or leave it empty)"
                )
            else:
                columns[feature.name] = _text_column(cells)
        if self.compiled is not None:
            return Columns(columns, len(matrix))  # no DataFrame on the compiled path
        return pd.DataFrame(columns)

    def _array(self, rows: Sequence[Any]) -> np.ndarray:
        if any(isinstance(r, dict) for r in rows):
            raise BadRequest("this model has no feature names; send rows of values, not records")
        widths = {len(r) if isinstance(r, (list, tuple)) else -1 for r in rows}
        if widths != {self._width} and self._width is not None:
            raise BadRequest(f"every row needs {self._width} values; got rows of {sorted(widths)}")
        width = len(rows[0])
        if all(isinstance(cell, str) for row in rows for cell in row):
            # CSV text: numpy parses it in one call; any missing marker, bad cell or infinity
            # falls through to the checked path below, which names the cell.
            try:
                fast = np.array(rows, dtype=float)
            except ValueError:
                fast = None
            if fast is not None and not np.isinf(fast).any():
                return fast
        columns = [_numbers([row[j] for row in rows], f"column {j}") for j in range(width)]
        return np.array(columns, dtype=float).T.reshape(len(rows), width)

    # predict_fn -----------------------------------------------------------------------
    def predict_fn(
        self, data: Columns | pd.DataFrame | np.ndarray, probabilities: bool = False
    ) -> Prediction:
        if isinstance(data, Columns):
            return self._predict_compiled(data, probabilities)
        try:
            labels = self.model.predict(data)
            proba = (
                self.model.predict_proba(data)
                if probabilities and hasattr(self.model, "predict_proba")
                else None
            )
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:
            raise ModelError(
                f"the model failed on this input: {type(exc).__name__}: {exc}"
            ) from exc
        if probabilities and proba is None:
            raise BadRequest("this model gives no probabilities (it is not a classifier)")
        classes = [str(c) for c in getattr(self.model, "classes_", [])] or None
        values = labels.tolist() if hasattr(labels, "tolist") else list(labels)
        return Prediction(values, None if proba is None else np.round(proba, 6).tolist(), classes)

    def _predict_compiled(self, data: Columns, probabilities: bool) -> Prediction:
        assert self.compiled is not None
        classes = self.compiled.spec["classes"]
        if probabilities and classes is None:
            raise BadRequest("this model gives no probabilities (it is not a classifier)")
        try:
            labels, proba = self.compiled.predict(data, probabilities)
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:
            raise ModelError(
                f"the model failed on this input: {type(exc).__name__}: {exc}"
            ) from exc
        rounded = None if proba is None else np.round(proba, 6).tolist()
        return Prediction(labels, rounded, classes)

    # output_fn ------------------------------------------------------------------------
    def output_fn(self, prediction: Prediction, accept: str) -> bytes:
        if accept == JSON:
            payload: dict[str, Any] = {"predictions": prediction.labels}
            if prediction.probabilities is not None:
                payload.update(probabilities=prediction.probabilities, classes=prediction.classes)
            return json.dumps(payload, allow_nan=False, default=str).encode()
        if accept == CSV:
            if prediction.probabilities is None:
                return ("\n".join(map(_csv_cell, prediction.labels)) + "\n").encode()
            return "".join(
                ",".join([_csv_cell(label), *map(str, p)]) + "\n"
                for label, p in zip(prediction.labels, prediction.probabilities, strict=True)
            ).encode()
        if accept == JSONLINES:
            return "".join(json.dumps(r, default=str) + "\n" for r in _records(prediction)).encode()
        raise NotAcceptable(f"Accept {accept!r} is not supported; use one of {', '.join(ACCEPTS)}")


def _records(prediction: Prediction) -> Iterable[dict[str, Any]]:
    for i, label in enumerate(prediction.labels):
        record: dict[str, Any] = {"prediction": label}
        if prediction.probabilities is not None and prediction.classes:
            record["probabilities"] = dict(
                zip(prediction.classes, prediction.probabilities[i], strict=True)
            )
        yield record


def _loads(text: str, where: str = "the body") -> Any:
    try:
        document = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, and integers too long to convert
        raise BadRequest(f"{where} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise BadRequest(
            f"{where} nests arrays or objects too deeply; send rows as flat lists or records"
        ) from None
    return document


def _number_column(cells: list[Any], name: str) -> np.ndarray:
    """``_numbers`` as a float array, parsed by numpy in one call when every cell is plain text
    or a plain number; anything unusual (a missing marker, a bad cell, a boolean, an infinity,
    an integer too large) takes the checked path, which names the cell."""
    kinds = {type(c) for c in cells}
    if kinds <= {str} or kinds <= {int, float}:
        try:
            fast = np.array(cells, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            fast = None
        if fast is not None and np.isfinite(fast).all():
            return fast
    return np.array(_numbers(cells, name), dtype=np.float64)


def _text_column(cells: list[Any]) -> list[str | None]:
    texts = [category_text(c) for c in cells]
    for text in texts:
        if text is not None and not text.isascii():
            text.encode("utf-8")  # half a surrogate pair raises here, as pandas would
    return texts


def _numbers(cells: list[Any], name: str) -> list[float]:
    values = []
    for cell in cells:
        if cell is None or (isinstance(cell, str) and cell.strip().lower() in MISSING):
            values.append(math.nan)  # missing: the model's imputer fills it
            continue
        if isinstance(cell, bool):
            raise BadRequest(f"feature {name!r} is numeric; got the boolean {cell!r}")
        try:
            value = float(cell)
        except (TypeError, ValueError, OverflowError):
            raise BadRequest(
                f"feature {name!r} is numeric; {str(cell)[:40]!r} is not a number"
            ) from None
        if math.isinf(value):
            raise BadRequest(
                f"feature {name!r} is infinite; send a finite number or leave it empty"
            )
        values.append(value)
    return values


def _csv_cell(value: Any) -> str:
    text = str(value)
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n') else text


def model_fn(model_dir: Path) -> ModelHandler:
    """Load the model once; a manifest makes the sha256 check mandatory. The manifest also says
    whether the model is served through its compiled form or by scikit-learn, and why."""
    from sagemaker_jobs import artifacts  # light: joblib, numpy, pandas, scikit-learn
    from sagemaker_jobs.contract import JobError

    if (model_dir / artifacts.MANIFEST_FILE).exists():
        try:
            model, manifest = artifacts.load(model_dir)
            compiled, serving = _compiled(model_dir, manifest)
        except JobError as exc:
            raise RuntimeError(f"refusing to serve {model_dir}: {exc}") from exc
        features = [Feature(f["name"], f["kind"]) for f in manifest["features"]]
        log.info("model %s: %s", manifest["sha256"][:12], serving)
        inputs = manifest.get("input_columns")  # format 2; a format 1 manifest has none
        return ModelHandler(
            model,
            features,
            manifest.get("classes"),
            manifest["sha256"][:12],
            compiled,
            serving,
            inputs if inputs and len(inputs) > len(features) else None,
        )
    path = model_dir / artifacts.MODEL_FILE
    if not path.exists():
        raise RuntimeError(f"no {artifacts.MODEL_FILE} in {model_dir}: nothing to serve")
    import joblib

    model = joblib.load(path)
    if _is_pipeline_model(model):
        raise RuntimeError(
            f"refusing to serve {model_dir}: {path.name} is a model trained by this project's "
            f"pipeline, but {artifacts.MANIFEST_FILE} is missing (it holds the features, their "
            "types and the sha256); deploy the whole model.tar.gz the Train job wrote"
        )
    log.warning(
        "%s has no manifest.json: serving %s unverified (no sha256 check)", model_dir, path.name
    )
    names = getattr(model, "feature_names_in_", None)
    bare = [Feature(str(n), "numeric") for n in names] if names is not None else None
    return ModelHandler(model, bare, None, "unverified")


def _compiled(model_dir: Path, manifest: dict[str, Any]) -> tuple[CompiledModel | None, str]:
    """The compiled form the manifest names (its files verified), or None and the reason."""
    from sagemaker_jobs import artifacts

    section = manifest.get("inference") or {}
    if section.get("runtime") != "onnxruntime":
        reason = section.get("reason", "the model was trained before compiled inference existed")
        return None, f"served by scikit-learn: {reason}"
    from inference.compiled import SPEC_FILE, TREES_FILE, CompiledModel

    files = section.get("files", {})
    spec = artifacts.verified(model_dir, SPEC_FILE, files.get(SPEC_FILE, ""))
    trees = artifacts.verified(model_dir, TREES_FILE, files.get(TREES_FILE, ""))
    compiled = CompiledModel.load(spec, trees)
    check = section.get("parity", {})
    return compiled, (
        f"served through its compiled form ({compiled.runtime}); at training it matched "
        f"scikit-learn on {check.get('rows', '?')} {check.get('split', '?')} rows "
        f"(labels {check.get('label_agreement', '?')}, largest difference "
        f"{check.get('max_probability_difference', check.get('max_value_difference', '?'))})"
    )


def _is_pipeline_model(model: Any) -> bool:
    """What this project's Train job fits: a Pipeline whose first step is a ColumnTransformer."""
    steps: Any = getattr(model, "steps", None)
    return bool(steps) and type(steps[0][1]).__name__ == "ColumnTransformer"

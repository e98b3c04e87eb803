"""Compile the fitted pipeline into its fast inference form, and prove it equal to scikit-learn.

The Train job calls ``build``: it reads the fitted ColumnTransformer's parameters into
``compiled.json``, writes every histogram-gradient-boosting tree as one ONNX ``TreeEnsemble``
(ai.onnx.ml opset 5, float64 thresholds and leaves, so the comparisons are scikit-learn's own;
a split on a category's code is a BRANCH_MEMBER node) into ``trees.onnx``, and checks parity
on the validation split. skl2onnx is not used: its 1.20 converter fails on scikit-learn 1.9's
histogram gradient boosting and refuses the categorical imputer. A model that cannot be
compiled, or whose compiled form disagrees, is served by scikit-learn, and the manifest says
why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sagemaker_jobs.contract import JobError, write_json
from sagemaker_jobs.data import Schema
from sagemaker_jobs.digests import file_sha256
from sagemaker_jobs.features import category_text

log = logging.getLogger(__name__)

RUNTIME = "onnxruntime"
SKLEARN = "scikit-learn"
# Largest allowed difference between compiled and scikit-learn probabilities (absolute) or
# regression values (relative to max(1, |value|)); labels must be identical. Measured
# differences are about 1e-15: only the order of floating-point sums differs.
TOLERANCE = 1e-9
PARITY_ROWS = 20_000  # enough to prove the form; bounded so a huge split stays quick


class Unsupported(Exception):
    """This model has no compiled form; it is served by scikit-learn."""


@dataclass
class Compiled:
    spec: dict[str, Any]
    trees: bytes


# building ------------------------------------------------------------------------------------
def column_blocks(model: Any) -> tuple[list[dict[str, Any]], Any]:
    """The fitted pipeline's column preparation, branch by branch (kind, input columns, output
    columns ``offset`` to ``stop`` and the parameters), and the estimator after it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        raise Unsupported(f"{type(model).__name__} is not the pipeline's columns + estimator")
    columns, estimator = model.steps[0][1], model.steps[1][1]
    if not isinstance(columns, ColumnTransformer):
        raise Unsupported(f"the first step is {type(columns).__name__}, not a ColumnTransformer")
    blocks, width = [], 0
    for name, branch, names in columns.transformers_:
        if name == "remainder":
            continue
        block = _block(name, branch, list(names), width)
        width = block["stop"]
        blocks.append(block)
    if width != estimator.n_features_in_:
        raise Unsupported(f"the columns give {width} features; the estimator takes more or fewer")
    return blocks, estimator


def feature_columns(blocks: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Which output columns each input column fills (every branch prepares each on its own)."""
    from sagemaker_jobs.features import DATE_PARTS

    layout = {}
    for block in blocks:
        for j, name in enumerate(block["columns"]):
            start, width = block["offset"] + j, 1
            if block["kind"] == "datetime":
                start, width = block["offset"] + len(DATE_PARTS) * j, len(DATE_PARTS)
            elif block.get("encoding") == "one_hot":
                start, width = block["offset"] + block["offsets"][j], block["widths"][j]
            layout[name] = list(range(start, start + width))
    return layout


def compile_model(model: Any) -> Compiled:
    from inference.compiled import FORMAT

    blocks, estimator = column_blocks(model)
    width = blocks[-1]["stop"] if blocks else 0
    trees, baseline, link, classes = _ensemble(estimator, width, _codes(blocks))
    spec = {
        "format": FORMAT,
        "width": width,
        "blocks": blocks,
        "link": link,
        "classes": classes,
        "baseline": baseline,
    }
    return Compiled(spec, trees)


def _steps(branch: Any, *kinds: str) -> list[Any]:
    if (names := _step_names(branch)) != list(kinds):
        raise Unsupported(f"a column branch is {names}, not {list(kinds)}")
    return [step for _, step in branch.steps]


def _step_names(branch: Any) -> list[str]:
    return [type(step).__name__ for _, step in getattr(branch, "steps", [])]


def _scaled(imputer: Any, scaler: Any, what: str) -> dict[str, list[float]]:
    fill = np.asarray(imputer.statistics_, dtype=np.float64)
    if np.isnan(fill).any() or imputer.add_indicator:
        raise Unsupported(f"the {what} imputer dropped an empty column or adds indicators")
    if scaler.mean_ is None or scaler.scale_ is None:
        raise Unsupported(f"the {what} scaler does not centre and scale")
    return {
        "fill": fill.tolist(),
        "mean": np.asarray(scaler.mean_).tolist(),
        "scale": np.asarray(scaler.scale_).tolist(),
    }


def _block(name: str, branch: Any, names: list[str], offset: int) -> dict[str, Any]:
    """One branch's parameters. Numbers and date parts are imputed and scaled for the models
    that need it; gradient boosting reads them raw (no ``fill``, ``mean`` and ``scale``)."""
    block: dict[str, Any] = {"kind": name, "columns": names, "offset": offset}
    if name == "numeric":
        if type(branch).__name__ == "FunctionTransformer" and branch.func is None:
            block["stop"] = offset + len(names)  # "passthrough"
        else:
            imputer, scaler = _steps(branch, "SimpleImputer", "StandardScaler")
            block.update(_scaled(imputer, scaler, "numeric"))
            block["stop"] = offset + len(block["fill"])
    elif name == "datetime":
        from sagemaker_jobs.features import DATE_PARTS, date_parts

        if _step_names(branch) == ["FunctionTransformer"]:
            (parts,) = _steps(branch, "FunctionTransformer")
        else:
            parts, imputer, scaler = _steps(
                branch, "FunctionTransformer", "SimpleImputer", "StandardScaler"
            )
            block.update(_scaled(imputer, scaler, "datetime"))
        if parts.func is not date_parts:
            raise Unsupported("the datetime branch does not use features.date_parts")
        block["stop"] = offset + len(DATE_PARTS) * len(names)
    elif name == "categorical":
        from sagemaker_jobs.features import fill_missing_categories

        if _step_names(branch) == ["FunctionTransformer", "OrdinalEncoder"]:
            fill, encoder = _steps(branch, "FunctionTransformer", "OrdinalEncoder")
            block.update(_ordinal_maps(encoder))
            block["stop"] = offset + len(names)
        else:  # forests and linear models: one column per category
            fill, encoder = _steps(branch, "FunctionTransformer", "OneHotEncoder")
            if encoder.drop_idx_ is not None:
                raise Unsupported("the one-hot encoder drops a category")
            block.update(_one_hot_maps(encoder))
            block["stop"] = offset + sum(block["widths"])
        if fill.func is not fill_missing_categories:
            raise Unsupported("the categorical branch does not fill missing cells as 'missing'")
    else:
        raise Unsupported(f"unknown column branch {name!r}")
    return block


def _probe(encoder: Any) -> list[tuple[list[str], np.ndarray]]:
    """Per input column: its known category texts and an unseen one, and what the fitted
    encoder itself makes of each (the other columns held at a known category)."""
    anchor = [str(c[0]) for c in encoder.categories_]
    probes = []
    for j, categories in enumerate(encoder.categories_):
        texts = [str(c) for c in categories]
        probe = [*texts, _unseen(texts)]
        rows = np.array([[*anchor[:j], text, *anchor[j + 1 :]] for text in probe], dtype=object)
        names = getattr(encoder, "feature_names_in_", None)  # fitted on a frame: give it one
        probes.append((texts, encoder.transform(rows if names is None else _frame(rows, names))))
    return probes


def _frame(rows: np.ndarray, names: Any) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(names), dtype=object)


def _one_hot_maps(encoder: Any) -> dict[str, Any]:
    """Where each known category, and an unknown one, lands among the column's one-hot columns."""
    widths = [int(w) for w in encoder._n_features_outs]  # per input column
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(int).tolist()
    maps, unknown = [], []
    for j, (texts, encoded) in enumerate(_probe(encoder)):
        block = encoded[:, offsets[j] : offsets[j] + widths[j]]
        if not np.all(block.sum(axis=1) <= 1):
            raise Unsupported("the one-hot encoder sets more than one column per category")
        index = np.where(block.any(axis=1), block.argmax(axis=1), -1).tolist()
        maps.append(dict(zip(texts, index[:-1], strict=True)))
        unknown.append(index[-1])
    return {
        "encoding": "one_hot",
        "maps": maps,
        "unknown": unknown,
        "offsets": offsets,
        "widths": widths,
    }


def _ordinal_maps(encoder: Any) -> dict[str, Any]:
    """Each known category's code (infrequent ones share one); an unknown one's is NaN, written
    as null."""
    maps: list[dict[str, int | None]] = []
    unknown: list[None] = []
    for j, (texts, encoded) in enumerate(_probe(encoder)):
        codes = [None if np.isnan(c) else int(c) for c in encoded[:, j]]
        if codes[-1] is not None:
            raise Unsupported("the ordinal encoder gives unknown categories a code")
        maps.append(dict(zip(texts, codes[:-1], strict=True)))
        unknown.append(None)
    return {"encoding": "ordinal", "maps": maps, "unknown": unknown}


def _unseen(texts: list[str]) -> str:
    candidate = "\x00unseen"
    while candidate in texts:
        candidate += "\x00"
    return candidate


def _codes(blocks: list[dict[str, Any]]) -> dict[int, int]:
    """Feature index -> how many codes its ordinal-encoded category column takes (0 to n-1)."""
    codes = {}
    for block in blocks:
        if block.get("encoding") == "ordinal":
            for j, table in enumerate(block["maps"]):
                codes[block["offset"] + j] = max(table.values(), default=-1) + 1
    return codes


def _ensemble(
    estimator: Any, width: int, codes: dict[int, int]
) -> tuple[bytes, list[float], str, list[str] | None]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if isinstance(estimator, HistGradientBoostingClassifier):
        classes = [str(c) for c in estimator.classes_]
        link = "logistic" if len(classes) == 2 else "softmax"
    elif isinstance(estimator, HistGradientBoostingRegressor):
        if type(estimator._loss.link).__name__ != "IdentityLink":
            raise Unsupported(f"the regressor's loss {estimator.loss!r} has a non-identity link")
        classes, link = None, "identity"
    else:
        raise Unsupported(
            f"{type(estimator).__name__} has no compiled form (only histogram gradient "
            "boosting has one)"
        )
    targets = estimator.n_trees_per_iteration_
    baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).ravel().copy()
    graph = _TreeEnsemble(targets, *_tree_inputs(estimator, codes))
    for iteration in estimator._predictors:
        for target, predictor in enumerate(iteration):
            constant = graph.add(predictor.nodes, predictor.raw_left_cat_bitsets, target)
            baseline[target] += constant
    return graph.onnx(width), baseline.tolist(), link, classes


@dataclass
class _Category:
    """A categorical feature as the trees see it: scikit-learn encodes the column's codes again
    (its own code i is our code ``ours[i]``) and knows the codes of the bin mapper's fit."""

    ours: list[int]
    known: set[int]
    codes: int  # our codes run 0 to codes - 1


def _tree_inputs(estimator: Any, codes: dict[int, int]) -> tuple[list[int], dict[int, _Category]]:
    """Which column of the compiled matrix each tree feature reads, and the categorical ones.
    With categorical features, scikit-learn's estimator puts them first and re-encodes them."""
    width = estimator.n_features_in_
    if estimator.is_categorical_ is None:
        return list(range(width)), {}
    categorical = np.flatnonzero(estimator.is_categorical_)
    preprocessor = estimator._preprocessor
    if preprocessor.output_indices_["encoder"] != slice(0, len(categorical)):
        raise Unsupported("the estimator does not put its categorical features first")
    columns = [*categorical.tolist(), *np.flatnonzero(~estimator.is_categorical_).tolist()]
    encoder = preprocessor.named_transformers_["encoder"]
    categories = {}
    for feature, (column, seen) in enumerate(zip(categorical, encoder.categories_, strict=True)):
        if int(column) not in codes:
            raise Unsupported(f"feature {column} is read as a category but is not a code")
        ours = [int(c) for c in seen if not np.isnan(c)]
        known = {int(c) for c in estimator._bin_mapper.bin_thresholds_[feature]}
        categories[feature] = _Category(ours, known, codes[int(column)])
    return columns, categories


class _TreeEnsemble:
    """The attributes of one ai.onnx.ml ``TreeEnsemble`` node, filled tree by tree."""

    def __init__(self, targets: int, columns: list[int], categories: dict[int, _Category]) -> None:
        self.targets = targets
        self.columns = columns  # tree feature -> column of the compiled matrix
        self.categories = categories  # tree feature -> its categories, for the categorical ones
        self.modes: list[int] = []
        self.members: list[float] = []  # each member node's codes, NaN after each
        self.roots: list[int] = []
        self.features: list[int] = []
        self.splits: list[float] = []
        self.true_ids: list[int] = []
        self.true_leaf: list[int] = []
        self.false_ids: list[int] = []
        self.false_leaf: list[int] = []
        self.missing_left: list[int] = []
        self.leaf_targets: list[int] = []
        self.leaf_weights: list[float] = []

    def add(self, nodes: np.ndarray, bitsets: np.ndarray, target: int) -> float:
        """Add one tree; a tree that is a single leaf returns its value (a constant) instead."""
        if nodes[0]["is_leaf"]:
            return float(nodes[0]["value"])
        inner = np.flatnonzero(~nodes["is_leaf"].astype(bool))
        leaves = np.flatnonzero(nodes["is_leaf"].astype(bool))
        number = {int(i): len(self.features) + k for k, i in enumerate(inner)}
        number.update({int(i): len(self.leaf_weights) + k for k, i in enumerate(leaves)})
        self.roots.append(number[0])
        for i in inner:
            node = nodes[i]
            left, right = int(node["left"]), int(node["right"])
            self.features.append(self.columns[int(node["feature_idx"])])
            if node["is_categorical"]:
                self._member(node, bitsets[node["bitset_idx"]])
            else:
                self.modes.append(0)  # BRANCH_LEQ: x <= threshold goes left
                self.splits.append(float(node["num_threshold"]))
            self.true_ids.append(number[left])
            self.true_leaf.append(int(nodes[left]["is_leaf"]))
            self.false_ids.append(number[right])
            self.false_leaf.append(int(nodes[right]["is_leaf"]))
            self.missing_left.append(int(node["missing_go_to_left"]))
        for i in leaves:
            self.leaf_targets.append(target)
            self.leaf_weights.append(float(nodes[i]["value"]))
        return 0.0

    def _member(self, node: np.void, bitset: np.ndarray) -> None:
        """A categorical split as BRANCH_MEMBER: the codes in the node's bitset go left; a code
        the trees did not see in training goes where missing values go, as in scikit-learn's
        predictor."""
        category = self.categories[int(node["feature_idx"])]
        known = [i for i in sorted(category.known) if i < len(category.ours)]
        left = {category.ours[i] for i in known if bitset[i // 32] >> (i % 32) & 1}
        if node["missing_go_to_left"]:
            seen = {category.ours[i] for i in known}
            left |= {c for c in range(category.codes) if c not in seen}
        self.modes.append(6)  # BRANCH_MEMBER
        self.splits.append(0.0)  # not read for member nodes
        self.members.extend([*map(float, sorted(left)), float("nan")])

    def onnx(self, width: int) -> bytes:
        from onnx import TensorProto, checker, helper, numpy_helper

        if not self.roots:
            raise Unsupported("the ensemble has no split at all")
        members = {}
        if self.members:
            values = np.asarray(self.members, dtype=np.float64)
            members["membership_values"] = numpy_helper.from_array(values)
        node = helper.make_node(
            "TreeEnsemble",
            ["X"],
            ["Y"],
            domain="ai.onnx.ml",
            aggregate_function=1,  # SUM
            post_transform=0,  # raw scores: the link is applied in NumPy, as scikit-learn does
            n_targets=self.targets,
            tree_roots=self.roots,
            nodes_featureids=self.features,
            nodes_splits=numpy_helper.from_array(np.asarray(self.splits, dtype=np.float64)),
            nodes_modes=numpy_helper.from_array(np.asarray(self.modes, dtype=np.uint8)),
            nodes_truenodeids=self.true_ids,
            nodes_trueleafs=self.true_leaf,
            nodes_falsenodeids=self.false_ids,
            nodes_falseleafs=self.false_leaf,
            nodes_missing_value_tracks_true=self.missing_left,
            leaf_targetids=self.leaf_targets,
            leaf_weights=numpy_helper.from_array(np.asarray(self.leaf_weights, dtype=np.float64)),
            **members,
        )
        graph = helper.make_graph(
            [node],
            "pipeline_trees",
            [helper.make_tensor_value_info("X", TensorProto.DOUBLE, [None, width])],
            [helper.make_tensor_value_info("Y", TensorProto.DOUBLE, [None, self.targets])],
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)],
            producer_name="sagemaker_jobs.compile",
        )
        model.ir_version = 10  # what onnxruntime 1.32 reads; onnx 1.23 would write 12
        checker.check_model(model)
        return bytes(model.SerializeToString())


# parity ----------------------------------------------------------------------------------------
def request_columns(frame: pd.DataFrame, schema: Schema) -> Any:
    """A split's rows in the form the model server hands the compiled model."""
    from inference.compiled import Columns

    values: dict[str, Any] = {}
    for name, kind in schema.features.items():
        column = frame[name]
        if kind == "numeric":
            values[name] = column.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values[name] = [category_text(v) for v in column.tolist()]
    return Columns(values, len(frame))


def parity(model: Any, compiled: Any, frame: pd.DataFrame, schema: Schema, split: str) -> dict:
    """Score the rows both ways; labels must be identical, values within TOLERANCE."""
    frame = frame.iloc[:PARITY_ROWS]
    features = frame[list(schema.features)]
    labels, probabilities = compiled.predict(request_columns(frame, schema), probabilities=True)
    expected = model.predict(features)
    if schema.problem_type == "classification":
        agree = np.asarray(labels, dtype=object) == np.asarray(expected, dtype=object)
        difference = float(np.abs(probabilities - model.predict_proba(features)).max())
        result = {"max_probability_difference": difference}
    else:
        got, want = np.asarray(labels, dtype=np.float64), np.asarray(expected, dtype=np.float64)
        agree = np.ones(len(got), dtype=bool)
        difference = float((np.abs(got - want) / np.maximum(1.0, np.abs(want))).max())
        result = {"max_value_difference": difference}
    agreement = float(agree.mean()) if len(agree) else 1.0
    return {
        "split": split,
        "rows": len(frame),
        "label_agreement": agreement,
        **result,
        "tolerance": TOLERANCE,
        "passed": bool(agreement == 1.0 and difference <= TOLERANCE),
    }


def build(
    model: Any, schema: Schema, model_dir: Path, frame: pd.DataFrame, split: str, enabled: bool
) -> dict[str, Any]:
    """Compile, write and check; return the manifest's ``inference`` section."""
    from inference.compiled import SPEC_FILE, TREES_FILE, CompiledModel

    if not enabled:
        reason = "compiled inference was turned off (hyperparameter compiled_inference=false)"
        return {"runtime": SKLEARN, "reason": reason}
    try:
        compiled = compile_model(model)
    except Unsupported as exc:
        return {"runtime": SKLEARN, "reason": f"no compiled form: {exc}"}
    check = parity(model, CompiledModel(compiled.spec, compiled.trees), frame, schema, split)
    if not check["passed"]:
        return {
            "runtime": SKLEARN,
            "reason": f"the compiled form disagreed with scikit-learn on the {split} split",
            "parity": check,
        }
    spec_path, trees_path = model_dir / SPEC_FILE, model_dir / TREES_FILE
    write_json(spec_path, compiled.spec)
    trees_path.write_bytes(compiled.trees)
    import onnxruntime

    return {
        "runtime": RUNTIME,
        "runtime_version": onnxruntime.__version__,
        "files": {SPEC_FILE: file_sha256(spec_path), TREES_FILE: file_sha256(trees_path)},
        "parity": check,
    }


def test_split_parity(
    model_dir: Path, model: Any, manifest: dict[str, Any], test: pd.DataFrame, schema: Schema
) -> dict[str, Any]:
    """Evaluate's check: the package's compiled form against scikit-learn on the test split.
    A disagreement fails the job: a package must not serve a path not proven equal."""
    from inference.compiled import SPEC_FILE, TREES_FILE, CompiledModel
    from sagemaker_jobs import artifacts

    section = manifest.get("inference") or {}
    if section.get("runtime") != RUNTIME:
        reason = section.get("reason", "the model was trained before compiled inference existed")
        return {"runtime": SKLEARN, "reason": reason}
    files = section.get("files", {})
    compiled = CompiledModel.load(
        artifacts.verified(model_dir, SPEC_FILE, files.get(SPEC_FILE, "")),
        artifacts.verified(model_dir, TREES_FILE, files.get(TREES_FILE, "")),
    )
    check = parity(model, compiled, test, schema, "test")
    if not check["passed"]:
        raise JobError(
            f"the compiled form disagrees with scikit-learn on the test split ({check}); "
            "retrain with the hyperparameter compiled_inference=false to serve with scikit-learn"
        )
    return {"runtime": RUNTIME, "runtime_version": section.get("runtime_version"), "parity": check}

"""The fitted pipeline as plain numpy arrays and JSON: a serving image without scikit-learn or scipy.

    python -m {{ cookiecutter.package }}.compiled build/model --golden build/golden.json

writes `compiled.json` and `compiled.npz` into the model folder, after checking that the compiled
model predicts exactly what the scikit-learn pipeline predicts on the golden rows (held-out rows
with the registered version's offline predictions) and on probe rows covering every category and
missing values: the same labels, and scores within 1e-9 (floating-point order, nothing more). On a
mismatch it writes nothing and exits 1, so the image is not built. A pipeline it cannot compile
(you changed features.py to something else) is said and left alone: the image then keeps
scikit-learn and serves the pipeline itself (the Dockerfile checks for compiled.json).

What is compiled: the preprocessor through fastpath.plan (imputation, scaling, one-hot encoding;
the same arrays serving's fast path uses), and the template's estimators: logistic regression and
ridge (a matrix product), random forests (every tree's arrays, walked as scikit-learn walks them:
inputs as float32, `x <= threshold` goes left) and histogram gradient boosting (its predictors'
nodes on raw values, missing values going where the fitted tree sends them). Loading needs numpy
only; `np.load(allow_pickle=False)` never runs code from the file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from {{ cookiecutter.package }}.fastpath import CategoricalBlock, NumericBlock, probe_rows, transform_of

FORMAT = "gitops-ml-compiled/1"
META, ARRAYS = "compiled.json", "compiled.npz"
RTOL, ATOL = 1e-9, 1e-12


class NotCompiled(Exception):
    """The pipeline is not one this module reproduces; the message says what."""


# -- serving: numpy only ------------------------------------------------------------------------


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _walk(x: np.ndarray, left: np.ndarray, right: np.ndarray, feature: np.ndarray, threshold: np.ndarray,
          missing_left: np.ndarray | None) -> np.ndarray:
    """The leaf each row reaches in one tree (node arrays as scikit-learn keeps them; a leaf has left -1)."""
    node = np.zeros(len(x), dtype=np.intp)
    rows = np.arange(len(x))
    while True:
        inner = left[node] != -1
        if not inner.any():
            return node
        at, here = rows[inner], node[inner]
        value = x[at, feature[here]].astype(np.float64)
        go_left = value <= threshold[here]
        if missing_left is not None:
            go_left = np.where(np.isnan(value), missing_left[here], go_left)
        node[at] = np.where(go_left, left[here], right[here])


@dataclass
class CompiledModel:
    """predict / predict_proba of object arrays of rows in contract order, as the pipeline's."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    compiled = True  # serving skips its own fast path: this one already is

    def __post_init__(self) -> None:
        blocks = []
        for block in self.meta["blocks"]:
            if block["kind"] == "numeric":
                blocks.append(NumericBlock(block["columns"], np.asarray(block["fill"], dtype=float),
                                           np.asarray(block["mean"], dtype=float),
                                           np.asarray(block["scale"], dtype=float)))
            else:
                lookups = [{value: index for value, index in pairs} for pairs in block["lookups"]]
                blocks.append(CategoricalBlock(block["columns"], block["fills"], lookups, block["width"]))
        self.transform = transform_of(blocks)
        self.estimator = self.meta["estimator"]

    def _scores(self, rows: Any) -> np.ndarray:
        x = self.transform(rows.tolist() if isinstance(rows, np.ndarray) else rows)
        kind, a = self.estimator["kind"], self.arrays
        if kind == "linear":
            return x @ a["coef"].T + a["intercept"]
        if kind == "forest":
            x32 = x.astype(np.float32)
            total = None
            for t in range(self.estimator["trees"]):
                value = a[f"t{t}.value"][_walk(x32, a[f"t{t}.left"], a[f"t{t}.right"], a[f"t{t}.feature"],
                                               a[f"t{t}.threshold"], a[f"t{t}.missing_left"])]
                if value.ndim == 2:  # classification: the leaf's class fractions, normalised as sklearn does
                    normalizer = value.sum(axis=1)[:, np.newaxis]
                    normalizer[normalizer == 0.0] = 1.0
                    value = value / normalizer
                total = value.copy() if total is None else total + value
            return total / self.estimator["trees"]
        if kind == "boosting":
            per_iteration = self.estimator["per_iteration"]
            raw = np.zeros((len(x), per_iteration)) + a["baseline"]
            for i in range(self.estimator["iterations"]):
                for k in range(per_iteration):
                    p = f"p{i}.{k}"
                    leaves = _walk(x, a[f"{p}.left"], a[f"{p}.right"], a[f"{p}.feature"], a[f"{p}.threshold"],
                                   a[f"{p}.missing_left"])
                    raw[:, k] += a[f"{p}.value"][leaves]
            return raw
        raise ValueError(f"unknown compiled estimator kind {kind!r}")

    def predict_proba(self, rows: Any) -> np.ndarray:
        scores, link = self._scores(rows), self.estimator["link"]
        if link == "logistic":
            p = _expit(scores.reshape(len(scores), -1)[:, -1])
            return np.vstack([1 - p, p]).T
        if link == "softmax":
            return _softmax(scores)
        if link == "forest":
            return scores
        raise ValueError(f"predict_proba of a {link} model")

    def predict(self, rows: Any) -> np.ndarray:
        if self.estimator["link"] == "identity":
            scores = self._scores(rows)
            return scores.ravel() if scores.ndim == 2 and scores.shape[1] == 1 else scores
        proba = self.predict_proba(rows)
        return np.asarray(self.meta["classes"], dtype=object)[proba.argmax(axis=1)]


def load(folder: Path) -> CompiledModel | None:
    """The compiled model in a model folder, or None when it has none (then serve the pipeline)."""
    meta_file, arrays_file = Path(folder) / META, Path(folder) / ARRAYS
    if not meta_file.is_file():
        return None
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{meta_file}: format {meta.get('format')!r} is not {FORMAT}")
    with np.load(arrays_file, allow_pickle=False) as found:
        arrays = {name: found[name] for name in found.files}
    return CompiledModel(meta, arrays)


# -- baking: needs scikit-learn -----------------------------------------------------------------


def _blocks(preprocessor: Any) -> list[dict[str, Any]]:
    from {{ cookiecutter.package }}.fastpath import Unsupported, plan

    try:
        blocks = plan(preprocessor)
    except Unsupported as error:
        raise NotCompiled(str(error)) from None
    out = []
    for block in blocks:
        if isinstance(block, NumericBlock):
            out.append({"kind": "numeric", "columns": block.columns, "fill": block.fill.tolist(),
                        "mean": block.mean.tolist(), "scale": block.scale.tolist()})
        else:
            lookups = [sorted(lookup.items(), key=lambda item: item[1]) for lookup in block.lookups]
            out.append({"kind": "categorical", "columns": block.columns, "fills": [_plain(v) for v in block.fills],
                        "lookups": [[[_plain(v), i] for v, i in pairs] for pairs in lookups], "width": block.width})
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _estimator(estimator: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    name = type(estimator).__name__
    if name == "LogisticRegression":
        link = "logistic" if len(estimator.classes_) <= 2 else "softmax"
        return {"kind": "linear", "link": link}, {"coef": estimator.coef_, "intercept": estimator.intercept_}
    if name == "Ridge":
        if np.ndim(estimator.coef_) != 1:
            raise NotCompiled("ridge with several targets")
        return {"kind": "linear", "link": "identity"}, {"coef": estimator.coef_, "intercept": np.asarray(
            estimator.intercept_, dtype=float)}
    if name in ("RandomForestClassifier", "RandomForestRegressor"):
        if estimator.n_outputs_ != 1:
            raise NotCompiled("a random forest with several outputs")
        arrays = {}
        for t, tree in enumerate(estimator.estimators_):
            inner = tree.tree_
            value = inner.value[:, 0, :] if name == "RandomForestClassifier" else inner.value[:, 0, 0]
            if name == "RandomForestClassifier" and value.shape[1] != len(estimator.classes_):
                raise NotCompiled("a tree whose classes differ from the forest's")
            missing = getattr(inner, "missing_go_to_left", None)
            missing = np.zeros(inner.node_count, dtype=bool) if missing is None else np.asarray(missing, dtype=bool)
            arrays.update({f"t{t}.left": inner.children_left, f"t{t}.right": inner.children_right,
                           f"t{t}.feature": inner.feature, f"t{t}.threshold": inner.threshold,
                           f"t{t}.missing_left": missing, f"t{t}.value": np.ascontiguousarray(value)})
        link = "forest" if name == "RandomForestClassifier" else "identity"
        return {"kind": "forest", "link": link, "trees": len(estimator.estimators_)}, arrays
    if name in ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor"):
        loss = type(estimator._loss).__name__
        links = {"HalfSquaredError": "identity", "HalfBinomialLoss": "logistic", "HalfMultinomialLoss": "softmax"}
        if loss not in links:
            raise NotCompiled(f"gradient boosting with loss {loss}")
        arrays = {"baseline": np.asarray(estimator._baseline_prediction, dtype=float).reshape(-1)}
        for i, predictors in enumerate(estimator._predictors):
            for k, predictor in enumerate(predictors):
                nodes = predictor.nodes
                if np.any(nodes["is_categorical"]):
                    raise NotCompiled("gradient boosting with categorical splits")
                p = f"p{i}.{k}"
                arrays.update({f"{p}.left": np.where(nodes["is_leaf"], -1, nodes["left"].astype(np.intp)),
                               f"{p}.right": nodes["right"].astype(np.intp),
                               f"{p}.feature": nodes["feature_idx"].astype(np.intp),
                               f"{p}.threshold": nodes["num_threshold"].astype(np.float64),
                               f"{p}.missing_left": nodes["missing_go_to_left"].astype(bool),
                               f"{p}.value": nodes["value"].astype(np.float64)})
        return {"kind": "boosting", "link": links[loss], "iterations": len(estimator._predictors),
                "per_iteration": estimator.n_trees_per_iteration_}, arrays
    raise NotCompiled(f"estimator {name} is not one the compiled format covers")


def compile_pipeline(pipeline: Any, features: list[dict[str, Any]], classes: list[Any] | None
                     ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    steps = getattr(pipeline, "steps", None)
    if not steps or len(steps) != 2:
        raise NotCompiled(f"the model is a {type(pipeline).__name__}, not a preprocessor + estimator pipeline")
    estimator, arrays = _estimator(pipeline[-1])
    meta = {"format": FORMAT, "blocks": _blocks(pipeline[0]), "estimator": estimator, "classes": classes,
            "features": [f["name"] for f in features]}
    return meta, arrays


def differences(pipeline: Any, compiled: CompiledModel, rows: np.ndarray, task: str) -> list[str]:
    """Where the compiled model disagrees with the pipeline on `rows` (empty when it agrees)."""
    found = []
    if task == "classification":
        expected, actual = pipeline.predict_proba(rows), compiled.predict_proba(rows)
        labels_expected = np.asarray(pipeline.classes_)[expected.argmax(axis=1)]
        labels_actual = np.asarray(pipeline.classes_)[actual.argmax(axis=1)]
        if (labels_expected != labels_actual).any():
            found.append(f"labels differ on {int((labels_expected != labels_actual).sum())} row(s)")
    else:
        expected, actual = pipeline.predict(rows), compiled.predict(rows)
    if expected.shape != actual.shape:
        return [*found, f"output shape {actual.shape} differs from the pipeline's {expected.shape}"]
    close = np.isclose(actual, expected, rtol=RTOL, atol=ATOL)
    if not close.all():
        where = np.argwhere(~close)[0]
        found.append(f"{int((~close).sum())} score(s) differ, e.g. at {tuple(int(i) for i in where)}: "
                     f"{expected[tuple(where)]!r} vs {actual[tuple(where)]!r}")
    return found


def golden_rows(golden: dict[str, Any], features: list[dict[str, Any]]) -> np.ndarray:
    """The golden file's rows (JSON objects) as the pipeline's object array, missing values as NaN."""
    names = [f["name"] for f in features]
    return np.array([[math.nan if row.get(n) is None else row[n] for n in names] for row in golden["rows"]],
                    dtype=object)


def export(folder: Path, golden: Path | None = None) -> str:
    """Compile the model in `folder` next to it, verified; the outcome in one line. Raises on a mismatch."""
    from {{ cookiecutter.package }}.serve import load as load_pipeline

    for stale in (META, ARRAYS):
        (folder / stale).unlink(missing_ok=True)
    loaded = load_pipeline(str(folder))
    try:
        meta, arrays = compile_pipeline(loaded.model, loaded.features, loaded.classes)
    except NotCompiled as why:
        return f"not compiled ({why}): the image keeps scikit-learn and serves the pipeline"
    compiled = CompiledModel(meta, arrays)
    checks = [("probe rows", probe_rows(loaded.features))]
    if golden is not None and golden.is_file():
        checks.insert(0, (f"golden rows ({golden.name})", golden_rows(json.loads(golden.read_text()),
                                                                         loaded.features)))
    for what, rows in checks:
        found = differences(loaded.model, compiled, rows, loaded.task)
        if found:
            raise ValueError(f"the compiled model differs from the pipeline on {what}: " + "; ".join(found))
    np.savez(folder / ARRAYS, **arrays)
    (folder / META).write_text(json.dumps(meta, indent=1) + "\n")
    shown = ", ".join(f"{len(rows)} {what}" for what, rows in checks)
    return f"compiled {meta['estimator']['kind']} model into {folder}/{META} (+ {ARRAYS}); equal on {shown}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package }}.compiled")
    parser.add_argument("model", type=Path, help="a baked model folder (build/model)")
    parser.add_argument("--golden", type=Path, default=None, help="golden rows to verify on (build/golden.json)")
    args = parser.parse_args(argv)
    try:
        print(export(args.model, args.golden))
    except (ValueError, RuntimeError) as error:  # a mismatch, or a model folder serving cannot load
        print(f"error: {error}; refusing to bake a model that would serve other predictions", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

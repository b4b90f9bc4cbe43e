"""A vectorised replacement for the fitted preprocessor, used by serving when it is provably equal.

scikit-learn's ColumnTransformer costs ~2 ms per call whatever the number of rows (validation,
per-column object handling, stacking), about 25x the estimator itself on one row. The template's
preprocessor is simple arithmetic once fitted: numeric columns are imputed and standardised,
categorical columns are imputed with the most frequent value and one-hot encoded. Either block may
be empty (every feature numeric, or every feature categorical).

`compile_preprocessor` reads those fitted statistics into arrays and lookup tables (`plan`), then
checks its output against the real transformer on probe rows. If the preprocessor is anything else
(you changed features.py), if anything fails while building or checking, or if any value differs,
it logs why once and returns None: serving then uses the pipeline as is. The fast path is an
optimisation and never a reason for serving to fail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

# scikit-learn is imported inside the functions that read a fitted preprocessor (`plan`), so the
# blocks and `transform_of` load with numpy alone: compiled.py serves them in an image without it.

Transform = Callable[[list[list[Any]]], np.ndarray]
log = logging.getLogger(__name__)


class Unsupported(Exception):
    """The preprocessor is not one the fast path reproduces; the message says what differs."""


@dataclass(frozen=True)
class NumericBlock:
    """Impute (fill) then standardise ((x - mean) / scale) the feature columns `columns`."""

    columns: list[int]
    fill: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    @property
    def width(self) -> int:
        return len(self.columns)


@dataclass(frozen=True)
class CategoricalBlock:
    """Impute with `fills`, then one-hot encode: `lookups[j]` maps a value of column j to its output index."""

    columns: list[int]
    fills: list[Any]
    lookups: list[dict[Any, int]]
    width: int


Block = NumericBlock | CategoricalBlock


def _steps(block: Any) -> list[Any]:
    from sklearn.pipeline import Pipeline

    return [step for _, step in block.steps] if isinstance(block, Pipeline) else [block]


def _numeric(block: Any, columns: list[int]) -> NumericBlock:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    steps = _steps(block)
    if len(steps) != 2 or not isinstance(steps[0], SimpleImputer) or not isinstance(steps[1], StandardScaler):
        raise Unsupported(f"numeric block {[type(s).__name__ for s in steps]} is not SimpleImputer + StandardScaler")
    imputer, scaler = steps
    if imputer.add_indicator:
        raise Unsupported("numeric imputer adds indicator columns")
    mean = scaler.mean_ if scaler.with_mean else np.zeros(len(columns))
    scale = scaler.scale_ if scaler.with_std else np.ones(len(columns))
    return NumericBlock(columns, np.asarray(imputer.statistics_, dtype=float), np.asarray(mean, dtype=float),
                        np.asarray(scale, dtype=float))


def _categorical(block: Any, columns: list[int]) -> CategoricalBlock:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    steps = _steps(block)
    if len(steps) != 2 or not isinstance(steps[0], SimpleImputer) or not isinstance(steps[1], OneHotEncoder):
        raise Unsupported(f"categorical block {[type(s).__name__ for s in steps]} is not SimpleImputer + OneHotEncoder")
    imputer, encoder = steps
    if encoder.drop is not None or encoder.handle_unknown != "ignore" or imputer.add_indicator:
        raise Unsupported("one-hot encoder drops categories, errors on unknown ones, or the imputer adds indicators")
    if getattr(encoder, "_infrequent_enabled", False):
        raise Unsupported("one-hot encoder groups infrequent categories")
    lookups, offset = [], 0
    for categories in encoder.categories_:
        lookups.append({value: offset + i for i, value in enumerate(categories.tolist())})
        offset += len(categories)
    return CategoricalBlock(columns, list(imputer.statistics_), lookups, offset)


def plan(preprocessor: Any) -> list[Block]:
    """The fitted preprocessor as plain arrays and lookup tables, block by block in output order.

    Raises Unsupported when it is not the template's kind of preprocessor. Blocks over no columns
    (scikit-learn leaves those unfitted) are left out, as the transformer's output leaves them out.
    """
    from sklearn.compose import ColumnTransformer

    if not isinstance(preprocessor, ColumnTransformer):
        raise Unsupported(f"the preprocessor is a {type(preprocessor).__name__}, not a ColumnTransformer")
    if getattr(preprocessor, "sparse_output_", False):
        raise Unsupported("the preprocessor's output is sparse")
    blocks: list[Block] = []
    for name, block, columns in preprocessor.transformers_:
        columns = list(columns)
        if block == "drop" or not columns:
            continue
        if name == "numeric":
            blocks.append(_numeric(block, columns))
        elif name == "categorical":
            blocks.append(_categorical(block, columns))
        else:
            raise Unsupported(f"block {name!r} over columns {columns} is neither 'numeric' nor 'categorical'")
    if not blocks:
        raise Unsupported("the preprocessor transforms no columns")
    return blocks


def transform_of(blocks: list[Block]) -> Transform:
    """A function of rows (lists in contract order) computing the blocks' output, side by side."""
    width = sum(block.width for block in blocks)
    offsets = np.cumsum([0] + [block.width for block in blocks]).tolist()
    numeric = [(offsets[i], b, itemgetter(*b.columns)) for i, b in enumerate(blocks) if isinstance(b, NumericBlock)]
    # Every categorical column once, with its lookup already pointing at the output column of each value.
    categorical = [(column, {value: offsets[i] + index for value, index in lookup.items()}, fill)
                   for i, b in enumerate(blocks) if isinstance(b, CategoricalBlock)
                   for column, lookup, fill in zip(b.columns, b.lookups, b.fills, strict=True)]

    def transform(rows: list[list[Any]]) -> np.ndarray:
        count = len(rows)
        out = np.zeros((count, width))
        for start, block, pick in numeric:
            # One column makes itemgetter return the value, not a tuple: hence the reshape. None -> nan.
            values = np.array([pick(row) for row in rows], dtype=float).reshape(count, block.width)
            np.copyto(values, block.fill, where=np.isnan(values))
            out[:, start:start + block.width] = (values - block.mean) / block.scale
        if categorical:
            hot, base = [], 0  # flat indices of the ones: one numpy assignment instead of one per value
            for row in rows:
                for column, lookup, fill in categorical:
                    value = row[column]
                    if value is None or value != value:  # missing (None or NaN)
                        value = fill
                    index = lookup.get(value)
                    if index is not None:  # unknown categories encode as all zeros, like handle_unknown="ignore"
                        hot.append(base + index)
                base += width
            out.flat[hot] = 1.0
        return out

    return transform


def compile_preprocessor(preprocessor: Any, probe: np.ndarray) -> Transform | None:
    """A function of rows equal to `preprocessor.transform` on `probe`, or None (logged once, with why)."""
    try:
        transform = transform_of(plan(preprocessor))
        expected = np.asarray(preprocessor.transform(probe), dtype=float)
        actual = transform(probe.tolist())
        if expected.shape != actual.shape:
            raise Unsupported(f"output shape {actual.shape} differs from the pipeline's {expected.shape}")
        if not np.allclose(expected, actual, rtol=1e-9, atol=1e-12, equal_nan=True):
            raise Unsupported("output differs from the pipeline's on the probe rows")
    except Unsupported as reason:
        log.info("fast path not used, serving runs the pipeline as is: %s", reason)
        return None
    except Exception as error:  # noqa: BLE001 - the fast path may never be a reason for serving to fail
        log.warning("fast path not used, serving runs the pipeline as is: building it failed with %s: %s",
                    type(error).__name__, error)
        return None
    return transform


def probe_rows(features: list[dict[str, Any]], rows: int = 64, seed: int = 0) -> np.ndarray:
    """Rows covering every category, missing values where allowed and a spread of numbers."""
    rng = np.random.default_rng(seed)
    columns = []
    for feature in features:
        if feature["type"] == "category":
            column = [feature["categories"][i % len(feature["categories"])] for i in range(rows)]
        elif feature["type"] == "bool":
            column = [bool(i % 2) for i in range(rows)]
        elif feature["type"] == "int":
            column = rng.integers(-50, 500, rows).tolist()
        else:
            column = (rng.normal(0, 100, rows)).tolist()
        if feature["nullable"]:
            column = [np.nan if i % 5 == 0 else v for i, v in enumerate(column)]
        columns.append(column)
    return np.array(list(zip(*columns, strict=True)), dtype=object)

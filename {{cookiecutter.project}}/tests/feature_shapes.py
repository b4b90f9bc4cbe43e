"""Contracts of every shape of feature set, derived from this repository's contract, and data for them.

Serving must work whatever the features are: all numeric, all categorical, both, with or without
missing values. Each shape keeps this contract's own columns of that kind (a synthetic column
stands in when the contract has none) and its target, so the tests that use them pass on any
dataset and still exercise this repository's features.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gitops_ml.core.contract import Column, Contract
from gitops_ml.io.model_dir import feature_schema

from {{ cookiecutter.package }}.fastpath import probe_rows

SYNTHETIC = {
    "numeric": {"synthetic_number": Column(type="float", min=0, max=1)},
    "categorical": {"synthetic_category": Column(type="category", categories=("a", "b", "c"))},
}
SHAPES = [f"{kinds}{'+missing' if missing else ''}" for kinds in ("numeric", "categorical", "mixed")
          for missing in (False, True)]


def with_columns(contract: Contract, features: dict[str, Column]) -> Contract:
    """The contract with these feature columns (and its own target)."""
    target = contract.data.target
    columns = {**features, target: contract.data.columns[target]}
    data = contract.data.model_copy(update={"columns": columns, "sensitive_attribute": None, "id_columns": ()})
    return contract.model_copy(update={"data": data})


def shape(contract: Contract, name: str) -> Contract:
    """The contract reduced (or extended) to one shape of SHAPES, e.g. "categorical+missing"."""
    kinds, _, missing = name.partition("+")
    columns = {n: contract.data.columns[n] for n in contract.data.features}
    chosen: dict[str, Column] = {}
    for kind in ("numeric", "categorical") if kinds == "mixed" else (kinds,):
        own = {n: c for n, c in columns.items() if (c.type == "category") == (kind == "categorical")}
        chosen.update(own or SYNTHETIC[kind])
    chosen = {n: c.model_copy(update={"nullable": bool(missing)}) for n, c in chosen.items()}
    return with_columns(contract, chosen)


def labels(contract: Contract, rows: int, seed: int) -> np.ndarray:
    """Targets of the contract's kind: its classes for classification, numbers for regression."""
    rng = np.random.default_rng(seed)
    target = contract.data.columns[contract.data.target]
    if contract.model.task == "regression":
        low, high = target.min if target.min is not None else 0.0, target.max if target.max is not None else 100.0
        return rng.uniform(low, high, rows)
    if target.type == "category":
        classes: list[Any] = list(target.categories or ())
    elif target.type == "bool":
        classes = [False, True]
    else:
        low = int(target.min) if target.min is not None else 0
        classes = list(range(low, low + 2 if target.max is None else int(target.max) + 1))[:5]
    values = np.array([classes[i % len(classes)] for i in range(rows)], dtype=object)  # every class present
    rng.shuffle(values)
    return values if target.type == "category" else values.astype(bool if target.type == "bool" else int)


def training_data(contract: Contract, rows: int = 400, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows (contract order, missing values where allowed) and targets for them."""
    return probe_rows(feature_schema(contract), rows=rows, seed=seed), labels(contract, rows, seed)


def as_json(row: list[Any], contract: Contract) -> dict[str, Any]:
    """One row as a request body: missing values as null."""
    return {n: (None if isinstance(v, float) and v != v else v) for n, v in zip(contract.data.features, row,
                                                                                  strict=True)}

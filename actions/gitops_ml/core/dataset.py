"""Datasets under the contract: typed reading and the model-input convention.

The convention every model in a gitops-ml repo follows: the model takes the contract's feature
columns, in contract order, as one 2-D object array (`to_matrix`). Training, evaluation, the
compare action and the serving app all build exactly this, so any of them can call
`model.predict` on a natively loaded scikit-learn pipeline without a DataFrame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gitops_ml.core.contract import CONTRACT_FILE, Contract
from gitops_ml.errors import GitopsMLError

PANDAS_DTYPES = {"int": "Int64", "float": "float64", "bool": "boolean", "category": "string"}


class DataError(GitopsMLError, ValueError):
    """A dataset cannot be read under the contract; the message names the file and what to do."""


def read_typed(path: str | Path, contract: Contract) -> pd.DataFrame:
    """Read a CSV with the contract's types (nullable integers, strings for categories).

    For data already checked by `gitops-ml data-check`; other data fails with a `DataError`.
    """
    columns = contract.data.columns
    try:
        frame = pd.read_csv(path, dtype={name: PANDAS_DTYPES[col.type] for name, col in columns.items()})
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; run `dvc pull` or the pipeline stage that writes it") from None
    except (ValueError, TypeError, pd.errors.ParserError) as error:
        raise DataError(f"{path}: cannot be read with the types declared in {CONTRACT_FILE} ({error}); "
                        f"run `gitops-ml data-check --data {path}` to see which column and line") from None
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing} declared in data.columns of {CONTRACT_FILE}; "
                        "add them to the data or remove them from the contract")
    return frame[list(columns)]


def to_matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Features in contract order as one object array, missing values as NaN."""
    matrix = frame[features].astype(object).to_numpy()
    matrix[pd.isna(matrix)] = np.nan
    return matrix


def target_array(frame: pd.DataFrame, contract: Contract) -> np.ndarray:
    values = frame[contract.data.target]
    if contract.model.task == "regression":
        return values.astype("float64").to_numpy()
    if contract.data.columns[contract.data.target].type == "category":
        return values.astype(object).to_numpy()
    return values.astype("int64").to_numpy()

"""The data under the contract: it passes the data checks, splits as the pipeline splits, and the
simulator of production data keeps the contract while drift moves it."""

import numpy as np
import pytest
from gitops_ml.core.checks import overall
from gitops_ml.core.dataset import to_matrix
from gitops_ml.io.csv_input import check_file

from {{ cookiecutter.package }} import data
from tests.conftest import ROOT


def test_training_data_passes_the_data_checks(contract):
    _, results = check_file(ROOT / contract.data.train, contract)
    assert overall(results) != "fail", [r.message for r in results if r.status == "fail"]


def test_the_split_is_reproducible_and_keeps_every_class(contract, tmp_path):
    train, test = data.split(contract, tmp_path / "a")
    again = data.split(contract, tmp_path / "b")
    assert train.read_text() == again[0].read_text() and test.read_text() == again[1].read_text()
    from gitops_ml.core.dataset import read_typed

    parts = read_typed(train, contract), read_typed(test, contract)
    assert len(parts[1]) == pytest.approx(contract.data.test_size * (len(parts[0]) + len(parts[1])), abs=1)
    if contract.model.task == "classification":
        target = contract.data.target
        assert set(parts[0][target].dropna()) == set(parts[0][target].dropna()) | set(parts[1][target].dropna())


def test_simulated_data_keeps_the_contract(contract, frame, tmp_path):
    path = tmp_path / "current.csv"
    simulated = data.simulate_for(contract, min(len(frame), 2000), seed=3, drift=1.0, source=frame)
    assert list(simulated.columns) == list(contract.data.columns)
    simulated.to_csv(path, index=False)
    _, results = check_file(path, contract)
    failed = {r.name for r in results if r.status == "fail"} - {"min_rows", "duplicates"}  # a sample of the data
    assert not failed, [r.message for r in results if r.status == "fail"]


def test_simulate_is_seeded_and_drift_moves_the_distribution(contract, frame):
    base = data.simulate_for(contract, 500, seed=3, drift=0.0, source=frame)
    assert base.equals(data.simulate_for(contract, 500, seed=3, drift=0.0, source=frame))
    drifted = data.simulate_for(contract, 500, seed=3, drift=1.0, source=frame)
    moved = []
    for name in contract.data.features:
        column = contract.data.columns[name]
        if column.is_numeric and base[name].astype(float).std() > 0:
            moved.append(drifted[name].astype(float).mean() > base[name].astype(float).mean())
        elif column.type == "category" and base[name].nunique() > 1:
            first = column.categories[0]
            moved.append((drifted[name] == first).mean() > (base[name] == first).mean())
    assert moved and all(moved)


@pytest.mark.parametrize("rows, drift", [(0, 0.0), (10, 1.5)])
def test_simulate_rejects_bad_arguments(contract, frame, rows, drift):
    with pytest.raises(ValueError):
        data.simulate_for(contract, rows, seed=0, drift=drift, source=frame)


def test_to_matrix_keeps_contract_order_and_marks_missing(contract, frame):
    rows = frame.head(50).copy()
    name = contract.data.features[-1]
    rows[name] = rows[name].astype(object)
    rows.iloc[0, rows.columns.get_loc(name)] = None
    matrix = to_matrix(rows, contract.data.features)
    assert matrix.shape == (len(rows), len(contract.data.features))
    assert matrix[0, -1] is np.nan or (isinstance(matrix[0, -1], float) and np.isnan(matrix[0, -1]))

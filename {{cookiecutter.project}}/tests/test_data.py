import numpy as np
import pytest
from gitops_ml.core.dataset import read_typed, to_matrix

from {{ cookiecutter.package }} import data
from tests.conftest import ROOT


def test_sample_data_matches_the_contract(contract):
    frame = read_typed(ROOT / contract.data.train, contract)
    assert list(frame.columns) == list(contract.data.columns)
    assert len(frame) >= contract.data.min_rows
    for name, column in contract.data.columns.items():
        if column.categories:
            assert set(frame[name].dropna()) <= set(column.categories), name


def test_simulate_is_seeded_and_drift_moves_the_distribution(contract):
    first = data.simulate_for(contract, 500, seed=3, drift=0.0)
    assert first.equals(data.simulate_for(contract, 500, seed=3, drift=0.0))
    drifted = data.simulate_for(contract, 500, seed=3, drift=1.0)
    assert drifted["age"].mean() > first["age"].mean() + 5
    assert list(drifted.columns) == list(contract.data.columns)


@pytest.mark.parametrize("rows, drift", [(0, 0.0), (10, 1.5)])
def test_simulate_rejects_bad_arguments(rows, drift):
    with pytest.raises(ValueError):
        data.simulate(rows, drift=drift)


def test_to_matrix_keeps_contract_order_and_marks_missing(contract):
    frame = data.simulate_for(contract, 200, seed=1, drift=0.0)
    frame.loc[0, "monthly_charges"] = None
    matrix = to_matrix(frame, contract.data.features)
    assert matrix.shape == (200, len(contract.data.features))
    assert np.isnan(matrix[0, contract.data.features.index("monthly_charges")])

"""Reading data under the contract: types, column order, the model-input convention, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from gitops_ml.core.dataset import DataError, read_typed, target_array, to_matrix
from gitops_ml.errors import GitopsMLError

from tests import template_files


@pytest.fixture
def contract():
    return template_files.contract("classification")


def test_columns_come_back_typed_and_in_contract_order(tmp_path, contract):
    frame = template_files.simulate(20, seed=0, drift=0.0)
    shuffled = frame[list(reversed(frame.columns))]
    shuffled.to_csv(tmp_path / "d.csv", index=False)
    typed = read_typed(tmp_path / "d.csv", contract)
    assert list(typed.columns) == list(contract.data.columns)
    assert str(typed["age"].dtype) == "Int64" and str(typed["contract"].dtype) == "string"
    matrix = to_matrix(typed, contract.data.features)
    assert matrix.dtype == object and matrix.shape == (20, len(contract.data.features))
    assert target_array(typed, contract).dtype == np.int64


def test_missing_values_become_nan_in_the_model_input(tmp_path, contract):
    frame = template_files.simulate(5, seed=0, drift=0.0)
    frame.loc[0, "monthly_charges"] = None
    frame.to_csv(tmp_path / "d.csv", index=False)
    matrix = to_matrix(read_typed(tmp_path / "d.csv", contract), contract.data.features)
    assert np.isnan(matrix[0, contract.data.features.index("monthly_charges")])


@pytest.mark.parametrize(("content", "message"), [
    ("age,tenure_months\n1,2\n", r"missing column\(s\)"),
    (None, "file not found"),
])
def test_unreadable_data_is_a_data_error_naming_the_file(tmp_path, contract, content, message):
    path = tmp_path / "d.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message) as raised:
        read_typed(path, contract)
    assert isinstance(raised.value, GitopsMLError) and str(path) in str(raised.value)


def test_a_wrong_type_points_to_data_check(tmp_path, contract):
    frame = template_files.simulate(5, seed=0, drift=0.0)
    frame["age"] = frame["age"].astype(object)
    frame.loc[2, "age"] = "old"
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match="gitops-ml data-check"):
        read_typed(tmp_path / "d.csv", contract)

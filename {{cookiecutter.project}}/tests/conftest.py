"""Fixtures derived from this repository's contract and data, so the tests hold for any dataset
that passes `gitops-ml data-check`: after you swap in your own CSV and gitops-ml.yaml they still
run, and still fail on a broken feature pipeline or app."""

from pathlib import Path

import pandas as pd
import pytest
import yaml
from gitops_ml.core.contract import load_contract
from gitops_ml.core.dataset import read_typed

ROOT = Path(__file__).resolve().parents[1]
MAX_ROWS = 5000  # the tests train on at most this many rows of the data, so they stay quick on big data


@pytest.fixture(scope="session")
def contract():
    return load_contract(ROOT / "gitops-ml.yaml")


@pytest.fixture(scope="session")
def frame(contract) -> pd.DataFrame:
    """The training data (data.train) as the pipeline reads it; `dvc pull` first if it is tracked by DVC."""
    path = ROOT / contract.data.train
    if not path.is_file():
        pytest.fail(f"{contract.data.train} (data.train) is missing: run `dvc pull` to fetch it")
    data = read_typed(path, contract)
    return data.sample(MAX_ROWS, random_state=0) if len(data) > MAX_ROWS else data


@pytest.fixture(scope="session")
def params() -> dict:
    return (yaml.safe_load((ROOT / "params.yaml").read_text()) or {}).get("train", {})


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path, monkeypatch):
    """No test writes to the repository's own MLflow database."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")

from pathlib import Path

import pytest
from gitops_ml.core.contract import load_contract

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def contract():
    return load_contract(ROOT / "gitops-ml.yaml")


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path, monkeypatch):
    """No test writes to the repository's own MLflow database."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")

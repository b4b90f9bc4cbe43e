"""`gitops-ml drift` end to end: a baked project, a real champion in a real MLflow server, production data from
the generated repo's own simulator, as a file and as the serving app's prediction log."""

from __future__ import annotations

import json

import pytest
import yaml
from gitops_ml.cli import main
from gitops_ml.core.contract import load_contract

from tests import drift_project
from tests.conftest import bake

MODEL = "drift-model"


@pytest.fixture(scope="module")
def project(tmp_path_factory, mlflow_server):
    root = bake(tmp_path_factory.mktemp("bake"), project=MODEL, task="classification")
    model, offline = drift_project.register_champion(root, mlflow_server)
    return root, model, offline


@pytest.fixture
def drift(project, tracking, monkeypatch, tmp_path):
    """Run `gitops-ml drift` in-process in the project, as in Actions (GITHUB_OUTPUT, job summary files)."""
    root = project[0]
    for name in ("GITHUB_ACTIONS", "PREDICTION_LOG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary"))
    monkeypatch.chdir(root)
    out = tmp_path / "reports"

    def run(*args: str) -> dict:
        code = main(["drift", "--out", str(out), *args])
        assert code == 0
        result = json.loads((out / "result.json").read_text())
        outputs = dict(line.split("=", 1) for line in (tmp_path / "output").read_text().splitlines() if "=" in line)
        return {"result": result, "outputs": outputs, "out": out,
                "summary": (tmp_path / "summary").read_text()}

    return run


def _current(root, frame):
    path = root / "data/production/current.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def test_injected_drift_is_found_and_reported_everywhere(project, drift):
    root, _, offline = project
    _current(root, drift_project.simulate(root, 1500, seed=11, drift=1.0))
    ran = drift()
    result, outputs = ran["result"], ran["outputs"]
    assert result["status"] == "drifted" and result["drifted"] and result["retrain"]
    assert outputs["status"] == "drifted" and outputs["drifted"] == "true" and outputs["retrain"] == "true"
    drifted = set(result["data_drift"]["drifted_columns"])
    assert {"age", "monthly_charges", "support_calls", "contract"} <= drifted
    assert result["current"]["rows"] == 1500 and result["reference"]["rows"] > 500
    assert result["prediction_drift"]["drifted"]  # older, pricier, more month-to-month: more churn predicted
    # the simulated data carries its labels: live performance against the champion's offline metrics
    performance = result["performance"]
    assert performance["labels"] == 1500 and set(performance["offline"]) <= set(offline)
    assert performance["live"]["roc_auc"] is not None
    # the reports
    assert "Drift: drifted" in ran["summary"] and "| age | ks |" in ran["summary"]
    for name in ("drift.html", "trend.png", "labeled.csv", "summary.md"):
        assert (ran["out"] / name).stat().st_size > 100, name
    assert result["labeled"]["rows"] == 1500 and len(result["data_hash"]) == 32
    assert result["trend"]["runs"] >= 1


def test_stable_data_is_stable_and_the_trend_grows(project, drift):
    root = project[0]
    _current(root, drift_project.simulate(root, 1500, seed=12, drift=0.0))
    first = drift()["result"]
    second = drift()
    assert first["status"] == second["result"]["status"] == "stable"
    assert not second["result"]["drifted"] and second["outputs"]["retrain"] == "false"
    assert second["result"]["trend"]["runs"] == first["trend"]["runs"] + 1
    assert first["data_hash"] == second["result"]["data_hash"]  # the same data, the same hash


def test_too_little_data_is_insufficient_never_no_drift(project, drift):
    root = project[0]
    _current(root, drift_project.simulate(root, 50, seed=13, drift=1.0))
    ran = drift()
    assert ran["result"]["status"] == "insufficient data" and ran["outputs"]["status"] == "insufficient data"
    assert ran["outputs"]["drifted"] == "false" and ran["outputs"]["retrain"] == "false"
    assert "50 current row(s), fewer than drift.min_current_rows 200" in ran["summary"]
    (root / "data/production/current.csv").unlink()
    ran = drift()
    assert ran["result"]["status"] == "insufficient data"
    assert "no current data at data/production/current.csv" in ran["summary"]


def test_the_prediction_log_window_with_feedback_labels(project, drift, tmp_path, monkeypatch):
    """Predictions as the serving app logs them, labels sent later to /feedback; an old file is outside the window."""
    root, model, _ = project
    contract = load_contract(root)
    contract_file = root / "gitops-ml.yaml"
    original = contract_file.read_text()
    raw = yaml.safe_load(original)
    raw["drift"]["current"] = "predictions"
    raw["drift"]["window_hours"] = 24
    contract_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        log = tmp_path / "log"
        monkeypatch.setenv("PREDICTION_LOG_DIR", str(log))
        fresh = drift_project.simulate(root, 800, seed=14, drift=0.0)
        ids = drift_project.write_prediction_log(log, fresh.drop(columns=[contract.data.target]), contract, model,
                                                 labels=fresh[contract.data.target])
        old = drift_project.simulate(root, 300, seed=15, drift=1.0)
        drift_project.write_prediction_log(log, old, contract, model, labels=None, hours_ago=48)
        ran = drift()
        result = ran["result"]
        assert result["current"]["rows"] == 800  # the 48-hour-old file is not in the 24-hour window
        assert result["status"] == "stable"
        assert result["performance"]["labels"] == 800 and result["performance"]["status"] == "ok"
        assert result["labeled"]["rows"] == 800
        assert "predictions logged" in result["current"]["source"]

        # the labels turn against the model: live performance falls below the contract's floor -> alert
        for path in log.glob("feedback-*.jsonl"):
            path.unlink()
        flipped = 1 - fresh[contract.data.target]
        (log / "feedback-29991231T000000-1-0.jsonl").write_text(
            "".join(json.dumps({"id": i, "ts": "2099-01-01T00:00:00.000Z", "label": int(v)}) + "\n"
                    for i, v in zip(ids, flipped, strict=True)))
        ran = drift()
        assert ran["result"]["performance"]["status"] == "below floor"
        assert ran["outputs"]["alert"] == "true" and ran["outputs"]["retrain"] == "true"
        assert "below the floor" in ran["summary"]
    finally:
        contract_file.write_text(original)

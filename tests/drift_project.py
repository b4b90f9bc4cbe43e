"""A baked project with a real champion for the drift tests: the template's feature pipeline fitted on the
sample data, logged to the real MLflow server with its offline metrics and its reference data, and
aliased `champion`; plus production data from the generated repo's own simulator (`data.simulate_for`)
and a prediction log in the serving app's format."""

from __future__ import annotations

import importlib.util
import json
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml
from gitops_ml.core import metrics as metric_fns
from gitops_ml.core.contract import Contract, load_contract
from gitops_ml.core.dataset import read_typed, target_array, to_matrix
from gitops_ml.core.evaluation import predict
from gitops_ml.io.model_dir import log_model
from gitops_ml.io.reference import REFERENCE_ARTIFACT
from gitops_ml.io.registry import CHAMPION, Registry
from sklearn.model_selection import train_test_split

from tests.conftest import mlflow_pointed_at


def module_of(root: Path, name: str):
    package = next((root / "src").iterdir())
    spec = importlib.util.spec_from_file_location(f"{package.name}_{name}_{uuid.uuid4().hex[:6]}",
                                                  package / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def register_champion(root: Path, tracking_uri: str):
    """Fit, log (metrics + reference) and register a champion for the project at `root`; returns the model."""
    contract = load_contract(root)
    frame = read_typed(root / contract.data.train, contract)
    train, test = train_test_split(frame, test_size=0.25, random_state=42)
    params = yaml.safe_load((root / "params.yaml").read_text())["train"]
    model = module_of(root, "features").build_pipeline(contract, params).fit(
        to_matrix(train, contract.data.features), target_array(train, contract))
    y_pred, y_score = predict(model, to_matrix(test, contract.data.features), contract.model.task)
    offline = metric_fns.compute(contract.metric_names, target_array(test, contract), y_pred, y_score)
    with mlflow_pointed_at(tracking_uri):
        mlflow.set_experiment(contract.registry.model_name)
        with mlflow.start_run(run_name="champion"), tempfile.TemporaryDirectory() as tmp:
            mlflow.log_metrics(offline)
            path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
            train.to_csv(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
            info = log_model(model, contract, contract.registry.model_name)
        Registry(tracking_uri, contract.registry.model_name).set_alias(CHAMPION, str(info.registered_model_version))
    return model, offline


def simulate(root: Path, rows: int, seed: int, drift: float) -> pd.DataFrame:
    """The generated repo's own drift simulator."""
    contract = load_contract(root)
    source = read_typed(root / contract.data.train, contract)  # what the simulator draws from, whatever the cwd
    return module_of(root, "data").simulate_for(contract, rows, seed, drift, source=source)


def write_prediction_log(folder: Path, frame: pd.DataFrame, contract: Contract, model, *, labels: pd.Series | None,
                         hours_ago: float = 1.0, per_file: int = 400) -> list[str]:
    """The serving app's log of `frame`'s rows as predicted by `model` (and their labels as /feedback), written
    `hours_ago` hours back, in files of `per_file` records. Returns the prediction ids."""
    folder.mkdir(parents=True, exist_ok=True)
    features = contract.data.features
    y_pred, y_score = predict(model, to_matrix(frame, features), contract.model.task)
    when = datetime.now(UTC) - timedelta(hours=hours_ago)
    ids = [uuid.uuid4().hex for _ in range(len(frame))]
    records = []
    for i, (_, row) in enumerate(frame.iterrows()):
        ts = (when + timedelta(milliseconds=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        inputs = {name: (None if pd.isna(row[name]) else row[name].item() if hasattr(row[name], "item") else row[name])
                  for name in features}
        record = {"id": ids[i], "ts": ts, "model": contract.registry.model_name, "model_version": "1",
                  "inputs": inputs, "prediction": y_pred[i].item(), "latency_ms": 1.5}
        if y_score is not None:
            record["probabilities"] = float(np.asarray(y_score)[i])
        records.append(record)
    stamp = (when + timedelta(seconds=len(frame) / 1000 + 1)).strftime("%Y%m%dT%H%M%S")
    for n, start in enumerate(range(0, len(records), per_file)):
        lines = "".join(json.dumps(r) + "\n" for r in records[start:start + per_file])
        (folder / f"predictions-{stamp}-4242-{n}.jsonl").write_text(lines)
    if labels is not None:
        later = (when + timedelta(minutes=30)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        feedback = "".join(json.dumps({"id": ids[i], "ts": later, "label": label.item() if hasattr(label, "item")
                                       else label}) + "\n" for i, label in enumerate(labels))
        (folder / f"feedback-{(when + timedelta(minutes=31)).strftime('%Y%m%dT%H%M%S')}-4242-0.jsonl").write_text(
            feedback)
    return ids

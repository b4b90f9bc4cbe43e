"""Bring your own data, end to end: the done test of "any dataset".

For each of three shapes of data the template has never seen, generated here, a project is baked
and only its CSV and gitops-ml.yaml change: the CSV is put in data/raw/, `gitops-ml contract infer
--write` writes the contract's data, metrics and promotion, and then the README's steps run as a
user runs them: `make data-check`, `make train`, `make test`, `gitops-ml compare`, `gitops-ml
promote`, `make serve` plus a prediction, and a drift check of simulated production data against
the champion. One bake and one shared venv per shape; the steps are one test per shape, in order.

- multiclass: three string labels, numeric features only;
- regression: a categorical feature that is also the sensitive attribute;
- rare: classification with missing values, a nullable sensitive attribute and a very rare class.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import free_port, post, project_env, run, setup_project, stop_group, wait_for_http

pytestmark = pytest.mark.slow


def multiclass(rows: int = 1200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (rows, 4))
    score = x[:, 0] + 0.8 * x[:, 1] - 0.5 * x[:, 2] + rng.normal(0, 0.4, rows)
    label = np.where(score < -0.6, "bronze", np.where(score < 0.6, "silver", "gold"))
    return pd.DataFrame({"sepal_width": (3 + x[:, 0]).round(2), "petal_len": (4 + x[:, 1]).round(2),
                         "stem_mm": (20 + 5 * x[:, 2]).round(1), "leaves": rng.poisson(5, rows), "grade": label})


def regression(rows: int = 1200, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    segment = rng.choice(["retail", "wholesale", "online"], rows, p=[0.5, 0.2, 0.3])
    size = rng.uniform(10, 200, rows).round(1)
    rooms = rng.integers(1, 8, rows)
    price = 1500 * size + 9000 * rooms + np.select([segment == "online", segment == "wholesale"], [20000, -15000], 0)
    return pd.DataFrame({"size_m2": size, "rooms": rooms, "segment": segment,
                         "price": (price + rng.normal(0, 15000, rows)).round(0)})


def rare(rows: int = 1500, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (rows, 2))
    label = np.where(x[:, 0] + rng.normal(0, 0.3, rows) > 0, "renew", "lapse")
    rare_rows = rng.choice(rows, 14, replace=False)  # under 1% of rows
    label[rare_rows] = "fraud"
    x[rare_rows, 1] += 4  # learnable, but rare
    frame = pd.DataFrame({"usage": (50 + 10 * x[:, 0]).round(2), "balance": (100 + 30 * x[:, 1]).round(2),
                          "cohort": rng.choice(["a", "b", "c"], rows), "label": label})
    frame.loc[rng.random(rows) < 0.03, "usage"] = np.nan
    frame.loc[rng.random(rows) < 0.04, "cohort"] = np.nan
    return frame


# name -> (bake answers, the data, its target, its sensitive attribute)
SHAPES: dict[str, tuple[dict, Callable[[], pd.DataFrame], str, str | None]] = {
    "multiclass": ({"task": "classification"}, multiclass, "grade", None),
    "regression": ({"task": "regression"}, regression, "price", "segment"),
    "rare": ({"task": "classification"}, rare, "label", "cohort"),
}


def own_project(tmp_path_factory, venv, mlflow_server, name: str) -> tuple[Path, dict]:
    answers, make_data, target, sensitive = SHAPES[name]
    project = setup_project(tmp_path_factory, venv, project=f"own-{name}", **answers)
    data = make_data()
    data.to_csv(project / "data" / "raw" / "own.csv", index=False)
    infer = [str(venv / "bin" / "gitops-ml"), "contract", "infer", "--data", "data/raw/own.csv", "--target", target,
             "--write", *(["--sensitive-attribute", sensitive] if sensitive else [])]
    run(infer, cwd=project, env=project_env(venv))
    return project, {"data": data, "target": target, "sensitive": sensitive,
                     "env": project_env(venv, mlflow_server), "venv": venv}


def make(project: Path, ctx: dict, *target: str) -> subprocess.CompletedProcess:
    return run(["make", *target, f"VENV={ctx['venv']}"], cwd=project, env=ctx["env"])


def gitops_ml(project: Path, ctx: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    command = [str(ctx["venv"] / "bin" / "gitops-ml"), *args]
    if check:
        return run(command, cwd=project, env=ctx["env"])
    return subprocess.run(command, cwd=project, env=ctx["env"], capture_output=True, text=True, timeout=900)


def request_row(ctx: dict, contract: dict) -> dict:
    """A row of the data as a client sends it: the features, missing values as null."""
    features = [name for name in contract["data"]["columns"] if name != ctx["target"]]
    row = ctx["data"][features].iloc[3]
    return {name: (None if pd.isna(value) else value.item() if hasattr(value, "item") else value)
            for name, value in row.items()}


@pytest.mark.parametrize("name", list(SHAPES))
def test_own_data_end_to_end(tmp_path_factory, venv, mlflow_server, name):
    project, ctx = own_project(tmp_path_factory, venv, mlflow_server, name)
    contract = yaml.safe_load((project / "gitops-ml.yaml").read_text())
    assert contract["data"]["train"] == "data/raw/own.csv" and contract["data"]["target"] == ctx["target"]
    assert (project / "gitops-ml.yaml").read_text().startswith("# yaml-language-server: $schema=")

    make(project, ctx, "data-check")  # no champion yet: the checks only
    make(project, ctx, "train")
    trained = json.loads((project / "reports" / "train.json").read_text())
    assert trained["version"] and trained["data_path"] == "data/raw/own.csv"

    tests = make(project, ctx, "test")  # the generated repo's own tests, on this data
    assert " passed" in tests.stdout and "failed" not in tests.stdout and "error" not in tests.stdout.lower()

    make(project, ctx, "compare")  # exits 1 on reject: the first model needs the floors, latency, fairness
    result = json.loads((project / "reports" / "compare" / "compare.json").read_text())
    assert result["verdict"] == "promote"
    if name == "rare":
        evaluation = result["challenger"]
        assert set(evaluation["slices"]) == {"a", "b", "c"}
        per_class = (project / "reports" / "compare" / "model-card.md").read_text()
        assert "| fraud |" in per_class  # the rare class has its own row in the model card
    make(project, ctx, "promote")

    port = free_port()
    server = subprocess.Popen(["make", "serve", f"VENV={ctx['venv']}", f"PORT={port}"], cwd=project, env=ctx["env"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=120, process=server)
        status, body = post(f"http://127.0.0.1:{port}/predict", request_row(ctx, contract))
        assert status == 200, body
        [prediction] = body["predictions"]
        if SHAPES[name][0]["task"] == "classification":
            assert prediction in set(ctx["data"][ctx["target"]])
        else:
            assert isinstance(prediction, float) and np.isfinite(prediction)
        assert str(body["model_version"]).isdigit()  # the production model's version verify made the champion
    finally:
        stop_group(server)

    make(project, ctx, "simulate")  # production data drawn from this data, with drift 0.5
    # against the training split: the production model verify adopts carries no reference data yet
    check = gitops_ml(project, ctx, "data-check", "--data", "data/production/current.csv", "--reference",
                      "data/split/train.csv", "--out", "reports/production-check", check=False)
    production = json.loads((project / "reports" / "production-check" / "result.json").read_text())
    assert check.returncode in (0, 1) and production["drift"] is not None, check.stdout[-3000:]
    assert production["failed"] == 0 or {c["name"] for c in production["checks"] if c["status"] == "fail"} == {
        "drift"}, check.stdout[-3000:]

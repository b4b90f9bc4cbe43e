"""A generated repo, installed for real: its own tests, `dvc repro`, MLflow registration, the API,
and the serving image on the local Docker engine."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import GENERATED, ROW, free_port, post, project_env, run, setup_project, wait_for_http

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_generated_lint_and_tests_pass(tmp_path_factory, venv, classification, task):
    project = classification if task == "classification" else setup_project(
        tmp_path_factory, venv, project="spend-model", task="regression")
    run(["make", "lint", f"VENV={venv}"], cwd=project, env=project_env(venv))
    result = run(["make", "test", f"VENV={venv}"], cwd=project, env=project_env(venv))
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_train_reproduces_the_pipeline_and_registers_a_version(trained, classification, venv, mlflow_server):
    version = trained["version"]
    assert trained["model_uri"] == f"models:/{GENERATED}-candidates/{version}"  # what a PR's train job registers
    assert len(trained["git_sha"]) == 40 and trained["data_hash"]
    assert trained["metrics"]["roc_auc"] > 0.7
    for output in ("models/model/MLmodel", "metrics.json", "reports/evaluation.png", "dvc.lock"):
        assert (classification / output).is_file(), output
    status = run([str(venv / "bin" / "dvc"), "status"], cwd=classification, env=project_env(venv))
    assert "up to date" in status.stdout  # nothing left to reproduce

    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    version = client.get_model_version(f"{GENERATED}-candidates", trained["version"])
    assert version.tags["git_sha"] == trained["git_sha"] and version.tags["data_hash"] == trained["data_hash"]
    run_data = client.get_run(version.run_id).data
    assert run_data.params["train.estimator"] == "logistic_regression"
    assert run_data.metrics["roc_auc"] == pytest.approx(trained["metrics"]["roc_auc"])
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "reference")}
    assert artifacts == {"reference/reference.csv"}


def test_make_data_check_leaves_the_pipeline_up_to_date(trained, classification, venv, mlflow_server):
    """Defect 7: `make data-check` wrote over the `validate` stage's output, so `dvc status` showed it stale."""
    run(["make", "data-check", f"VENV={venv}"], cwd=classification, env=project_env(venv, mlflow_server))
    assert (classification / "reports/local/data-check/result.json").is_file()
    status = run([str(venv / "bin" / "dvc"), "status"], cwd=classification, env=project_env(venv))
    assert "up to date" in status.stdout, status.stdout


def test_api_serves_the_registered_model(trained, classification, venv, mlflow_server):
    port = free_port()
    server = subprocess.Popen(
        [str(venv / "bin" / "python"), "-m", "gen_model.serve", "--model", trained["model_uri"],
         "--port", str(port)], cwd=classification, env=project_env(venv, mlflow_server))
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=60, process=server)
        status, body = post(f"http://127.0.0.1:{port}/predict", ROW)
        assert status == 200 and body["predictions"][0] in (0, 1) and 0 <= body["probabilities"][0] <= 1
        assert body["model_version"] == trained["version"]  # a string, as the OpenAPI schema says
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metadata") as response:
            meta = json.loads(response.read())
        assert (meta["name"], meta["version"], meta["git_sha"]) == (f"{GENERATED}-candidates", trained["version"],
                                                                 trained["git_sha"])
        status, body = post(f"http://127.0.0.1:{port}/predict", {**ROW, "contract": "forever"})
        assert status == 422 and "contract" in json.dumps(body)
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.docker
def test_serving_image_is_healthy_non_root_and_predicts(trained, classification, venv, mlflow_server,
                                                         docker_client, base_image):
    env = project_env(venv, mlflow_server)
    run([str(venv / "bin" / "gitops-ml"), "bake", "--model", trained["model_uri"]], cwd=classification, env=env)
    assert json.loads((classification / "build/model/registry.json").read_text())["version"] == trained["version"]
    image, _ = docker_client.images.build(path=str(classification), tag=f"{GENERATED}:test", rm=True,
                                          buildargs={"BASE_IMAGE": base_image})
    config = image.attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Healthcheck"]["Test"][0] == "CMD"
    port = free_port()
    container = docker_client.containers.run(image.id, detach=True, ports={"8000/tcp": ("127.0.0.1", port)})
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", timeout=60)
        status, body = post(f"http://127.0.0.1:{port}/predict", {"rows": [ROW, ROW]})
        assert status == 200 and len(body["predictions"]) == 2 and body["model_version"] == trained["version"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            container.reload()
            if container.attrs["State"]["Health"]["Status"] == "healthy":
                break
            time.sleep(1)
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
    finally:
        container.remove(force=True)

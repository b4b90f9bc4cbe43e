"""Shared fixtures: a real MLflow server, baked projects, free ports, waiting for services."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

# `github_fake`: a local fake of GitHub's REST API; `fake_kubectl`: a recorded kubectl on PATH.
pytest_plugins = ["tests.github_fake", "tests.kube"]

ROOT = Path(__file__).resolve().parents[1]
ACTIONS = ROOT / "actions"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process serving {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception as error:  # noqa: BLE001 - still starting
            last = error
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s: {last}")


def bake(output_dir: Path, **answers: str) -> Path:
    """Generate a project from the template (hooks included) and return its folder."""
    from cookiecutter.main import cookiecutter

    env_remote = output_dir / "dvc-remotes"
    os.environ["GITOPS_ML_DVC_REMOTE_ROOT"] = str(env_remote)
    path = cookiecutter(str(ROOT), no_input=True, output_dir=str(output_dir), extra_context=answers)
    return Path(path)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking + registry + artifact server on 127.0.0.1, for the whole session."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (root / "server.log").open("w")  # closed in the finally below
    process = subprocess.Popen(
        [str(VENV_BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=90, process=process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def tracking(mlflow_server, monkeypatch):
    """Point MLflow clients in this test at the shared server."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    return mlflow_server


BASE_IMAGE = "gitops-ml/python-base:bookworm"


@pytest.fixture(scope="session")
def docker_client():
    """The local Docker engine (started by scripts/setup.sh --test); fails loudly when absent."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as error:  # noqa: BLE001 - any failure means the same thing here
        pytest.fail(f"no Docker engine answers ({error}); run `scripts/setup.sh --test` (or `make test`) first")
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The stand-in for python:*-slim (no registry can be pulled from here), built once and cached."""
    subprocess.run([str(ROOT / "scripts" / "build-base-image.sh"), BASE_IMAGE], check=True)
    return BASE_IMAGE


def run(args, cwd: Path, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output when it fails."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {result.returncode} in {cwd}\n"
                    f"--- stdout ---\n{result.stdout[-5000:]}\n--- stderr ---\n{result.stderr[-5000:]}")
    return result


# --- a generated project, installed and trained once per session ------------------------------

GENERATED = "gen-model"  # the session's generated project: its own registered model on the shared server
ROW = {"age": 40, "tenure_months": 12, "monthly_charges": 70.5, "support_calls": 2,
       "contract": "month-to-month", "payment_method": "card", "region": "north", "gender": "female"}


@pytest.fixture(scope="session")
def venv(tmp_path_factory) -> Path:
    """One virtualenv shared by the generated projects of the session (each installs itself into it)."""
    return tmp_path_factory.mktemp("venv") / ".venv"


def project_env(venv: Path, tracking_uri: str | None = None) -> dict:
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("GITHUB_ACTIONS", None)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def setup_project(tmp_path_factory, venv: Path, **answers) -> Path:
    project = bake(tmp_path_factory.mktemp("generated"), **answers)
    run(["make", "setup", f"VENV={venv}", f"GITOPS_ML={ACTIONS}"], cwd=project)
    return project


@pytest.fixture(scope="session")
def classification(tmp_path_factory, venv) -> Path:
    return setup_project(tmp_path_factory, venv, project=GENERATED, task="classification")


@pytest.fixture(scope="session")
def trained(classification, venv, mlflow_server) -> dict:
    """`make train` against the real MLflow server: dvc repro, then register a version."""
    run(["make", "train", f"VENV={venv}"], cwd=classification, env=project_env(venv, mlflow_server))
    return json.loads((classification / "reports" / "train.json").read_text())

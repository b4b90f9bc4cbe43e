"""The serving app under load and under fuzzing, in a short bounded form for CI.

The long forms are `make load-test` (64 connections for 30 s) and `make fuzz` (2,000 examples per
operation); both run these same tests with bigger numbers from the environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, ROW, free_port, project_env, run, wait_for_http

pytestmark = pytest.mark.slow

LOAD_SECONDS = float(os.environ.get("GITOPS_ML_LOAD_SECONDS", "5"))
FUZZ_EXAMPLES = int(os.environ.get("GITOPS_ML_FUZZ_EXAMPLES", "100"))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.fixture(scope="module")
def served(trained, classification, venv, mlflow_server):
    """Our app serving version 1 from a baked folder, as the image does."""
    env = project_env(venv, mlflow_server)
    run([str(venv / "bin" / "gitops-ml"), "bake", "--model", trained["model_uri"], "--out", "build/reliability"],
        cwd=classification, env=env)
    port = free_port()
    server = subprocess.Popen([str(venv / "bin" / "python"), "-m", "gen_model.serve", "--model", "build/reliability",
                               "--port", str(port)], cwd=classification, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/ready", timeout=60, process=server)
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=15)


def load(url: str, body: Path, connections: int, seconds: float) -> dict:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "loadgen.py"), "--url", url, "--body", str(body),
         "--connections", str(connections), "--seconds", str(seconds)],
        capture_output=True, text=True, check=True, timeout=seconds + 60)
    return json.loads(result.stdout)


def test_64_connections_get_no_errors_and_memory_stays_flat(served, tmp_path):
    url, server = served
    one_row, batch = tmp_path / "one.json", tmp_path / "batch.json"
    one_row.write_text(json.dumps(ROW))
    batch.write_text(json.dumps({"rows": [ROW] * 100}))
    first = load(f"{url}/predict", one_row, 64, LOAD_SECONDS)
    after_first = rss_mb(server.pid)
    second = load(f"{url}/predict", one_row, 64, LOAD_SECONDS)
    batches = load(f"{url}/predict", batch, 64, LOAD_SECONDS / 2)
    after_all = rss_mb(server.pid)
    for result in (first, second, batches):
        assert result["errors"] == 0, result["first_error"]
        assert result["requests"] > 100
    # Steady state: a second run may not grow the process by more than a few percent.
    assert after_all <= after_first * 1.10 + 5, f"RSS grew from {after_first:.0f} to {after_all:.0f} MB"
    # The prediction log kept up: every prediction of all three runs is logged, none dropped.
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    dropped = [line for line in metrics.splitlines()
               if line.startswith("gitops_ml_log_records_dropped_total") and 'stream="predictions"' in line]
    assert len(dropped) == 1 and float(dropped[0].rsplit(" ", 1)[1]) == 0, dropped


def test_schemathesis_finds_no_server_error_and_no_schema_violation(served, tmp_path):
    url, _ = served
    result = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", f"{url}/openapi.json", "--checks", "all",
         "--max-examples", str(FUZZ_EXAMPLES), "--seed", "1", "--request-timeout", "10"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)  # its example database stays out of the repo
    summary = "\n".join(line[:300] for line in result.stdout.splitlines()[-40:])
    assert result.returncode == 0, f"schemathesis found problems:\n{summary}"
    assert " passed" in result.stdout

"""The gitops-ml demo: generate a model repository and run its lifecycle locally, nothing to configure.

    make demo                 (or: .venv/bin/python scripts/demo.py [--dir DIR] [--keep-serving])

1. generate a repo from the template into a temporary folder (git + DVC initialised)
2. install it (`make setup`), train it (`make train`: dvc repro + MLflow registration)
3. compare candidate 1 with the (absent) champion, verify it into the production model and promote it
4. serve the champion and make one prediction
5. simulate drifted production data and check it against the champion's reference data
6. train a challenger with other hyperparameters on a branch and compare it with the champion
7. ship (when a Docker engine, `docker-registry` and `haproxy` are here; otherwise it says why it
   skips): build the champion's image into a local OCI registry and deploy it behind HAProxy;
   verify a new production version (the challenger, or the first candidate again when the
   challenger is refused), promote, build and deploy it; then roll back: the previous champion
   serves again and the aliases swap

Everything runs on embedded defaults: MLflow on a SQLite file, a local DVC remote, uvicorn.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ROW = {"age": 40, "tenure_months": 3, "monthly_charges": 95.5, "support_calls": 4,
       "contract": "month-to-month", "payment_method": "electronic-check", "region": "north", "gender": "female"}


STEPS = 7


def step(number: int, title: str) -> None:
    print(f"\n\033[1m[{number}/{STEPS}] {title}\033[0m", flush=True)


def sh(args: list[str], cwd: Path, env: dict, check: bool = True) -> int:
    print(f"  $ {' '.join(args)}", flush=True)
    result = subprocess.run(args, cwd=cwd, env=env)
    if check and result.returncode != 0:
        sys.exit(f"demo failed: `{' '.join(args)}` exited {result.returncode} (output above)")
    return result.returncode


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"demo failed: the model server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"demo failed: {url} did not answer within {timeout} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="where to generate (default: a new temp folder)")
    parser.add_argument("--keep-serving", action="store_true", help="leave the model server running at the end")
    args = parser.parse_args(argv)
    workdir = (args.dir or Path(tempfile.mkdtemp(prefix="gitops-ml-demo-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    step(1, f"generate a model repository into {workdir}")
    project = workdir / "churn-model"
    venv = project / ".venv"
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "GITOPS_ML_DVC_REMOTE_ROOT": str(workdir / "dvc-remote")}
    for leaked in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        env.pop(leaked, None)
    cookiecutter = Path(sys.executable).parent / "cookiecutter"
    sh([str(cookiecutter), str(ROOT), "--no-input", "--output-dir", str(workdir), "project=churn-model"], workdir, env)

    step(2, "install it and train: dvc repro (validate, split, train, evaluate), then register in MLflow")
    sh(["make", "setup", f"GITOPS_ML={ROOT / 'actions'}"], project, env)
    sh(["make", "train"], project, env)
    version = json.loads((project / "reports/train.json").read_text())["version"]

    step(3, f"compare candidate {version} with the champion (none yet: the floors decide), verify and promote it")
    sh(["gitops-ml", "compare", "--challenger", version], project, env)
    sh(["gitops-ml", "verify", "--candidate", version], project, env)  # compare again, copy into production
    production = json.loads((project / "reports/verify/verify.json").read_text())["versions"][-1]
    sh(["gitops-ml", "promote", "--version", production], project, env)
    sh(["gitops-ml", "lineage", production], project, env)

    step(4, "serve the champion and make one prediction")
    port = free_port()
    server = subprocess.Popen(
        [str(venv / "bin" / "python"), "-m", "churn_model.serve", "--model", "models:/churn-model@champion",
         "--port", str(port)], cwd=project, env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}/ready", server)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=json.dumps(ROW).encode(),
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            prediction = json.loads(response.read())
        print(f"  POST /predict {json.dumps(ROW)}\n  -> {json.dumps(prediction)}")

        step(5, "simulate drifted production data and check it against the champion's reference data")
        sh(["make", "simulate", "DRIFT=0.8"], project, env)
        sh(["gitops-ml", "data-check", "--data", "data/production/current.csv", "--out", "reports/production-check"],
           project, env, check=False)

        step(6, "a challenger on a branch: other hyperparameters, trained and compared with the champion")
        sh(["git", "checkout", "-q", "-b", "tune-model"], project, env)
        params = (project / "params.yaml").read_text().replace("C: 1.0", "C: 0.05")
        (project / "params.yaml").write_text(params)
        sh(["git", "commit", "-qam", "Stronger regularisation"], project, env)
        sh(["make", "train"], project, env)
        challenger = json.loads((project / "reports/train.json").read_text())["version"]
        verdict = sh(["gitops-ml", "compare", "--challenger", challenger], project, env, check=False)
        print(f"  compare exited {verdict}: {'promote' if verdict == 0 else 'reject'} (details in the table above)")
    finally:
        if not args.keep_serving:
            server.terminate()
            server.wait(timeout=10)

    step(7, "ship: build the images, deploy behind HAProxy, ship the challenger, roll back")
    shipped = ship(project, workdir, env, champion=production, candidates=(challenger, version))

    print(f"""
\033[1mdone in {time.monotonic() - started:.0f} s. Where to look:\033[0m
  repository        {project}
  MLflow UI         cd {project} && .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db
  comparison        {project / 'reports/compare/compare.md'}
  model card        {project / 'reports/compare/model-card.md'}
  data checks       {project / 'reports/production-check/summary.md'} (drift: drift.html beside it)
  evaluation plot   {project / 'reports/evaluation.png'}""")
    if shipped:
        print(f"  deploys           {project / 'reports'}/deploy-demo.json (the last one: the rollback)")
    if args.keep_serving:
        print(f"  model server      http://127.0.0.1:{port}/docs (pid {server.pid})")
    return 0


def why_not_ship() -> str | None:
    """Why step 7 cannot run here, or None."""
    import shutil

    for tool in ("docker", "docker-registry", "haproxy"):
        if not shutil.which(tool):
            return f"`{tool}` is not installed (scripts/setup.sh --test installs the Docker engine and the rest)"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "no Docker engine answers `docker info` (start it: scripts/start-docker.sh)"
    return None


def ship(project: Path, workdir: Path, env: dict, champion: str, candidates: tuple[str, ...]) -> bool:
    """Build, deploy, ship a new version, roll back, all on this machine; False when skipped."""
    import yaml

    reason = why_not_ship()
    if reason:
        print(f"  skipped: {reason}")
        return False
    base = "gitops-ml/python-base:bookworm"  # the offline stand-in; elsewhere the Dockerfile's python image
    base_args = ["--base-image", base] if subprocess.run(["docker", "image", "inspect", base],
                                                         capture_output=True).returncode == 0 else []
    registry, proxy_port, admin_port = (f"127.0.0.1:{free_port()}", free_port(), free_port())
    (workdir / "registry.yml").write_text(json.dumps({
        "version": 0.1, "log": {"level": "error"}, "http": {"addr": registry},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "registry")}}}))
    processes = [
        subprocess.Popen(["docker-registry", "serve", str(workdir / "registry.yml")], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
        subprocess.Popen(["haproxy", "-db", "-f", str(project / "deploy/docker/haproxy.cfg")],
                         env={**env, "PROXY_BIND": f"127.0.0.1:{proxy_port}",
                              "PROXY_ADMIN": f"ipv4@127.0.0.1:{admin_port}"},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    url = f"http://127.0.0.1:{proxy_port}"
    contract = project / "gitops-ml.yaml"
    raw = yaml.safe_load(contract.read_text())
    raw["registry"]["image"] = f"{registry}/churn-model"
    raw["deploy"]["environments"] = {"demo": {"url": url, "proxy": {"admin": f"tcp://127.0.0.1:{admin_port}"}}}
    contract.write_text(yaml.safe_dump(raw, sort_keys=False))
    gitops = ["gitops-ml"]
    try:
        wait_ready(f"http://{registry}/v2/", processes[0])
        sh([*gitops, "build-image", "--version", champion, *base_args], project, env)
        sh([*gitops, "deploy", "--environment", "demo", "--version", champion], project, env)
        print(f"  GET {url}/metadata -> version {serving(url)}")
        for candidate in candidates:  # the challenger when verify accepts it, else the first candidate again
            if sh([*gitops, "verify", "--candidate", candidate], project, env, check=False) == 0:
                break
        else:
            sys.exit("demo failed: verify refused every candidate (output above)")
        new = json.loads((project / "reports/verify/verify.json").read_text())["versions"][-1]
        sh([*gitops, "build-image", "--version", new, *base_args], project, env)
        sh([*gitops, "deploy", "--environment", "demo", "--version", new], project, env)
        sh([*gitops, "promote", "--version", new], project, env)
        print(f"  GET {url}/metadata -> version {serving(url)}")
        sh([*gitops, "rollback", "--environment", "demo", "--reason", "demo: the new version misbehaves"],
           project, env)
        print(f"  GET {url}/metadata -> version {serving(url)} (rolled back; champion and previous-champion swapped)")
    finally:
        sh(["git", "checkout", "-q", "--", "gitops-ml.yaml"], project, env, check=False)
        subprocess.run(["docker", "rm", "-f", *container_ids()], capture_output=True)
        for process in processes:
            process.terminate()
            process.wait(timeout=15)
    return True


def serving(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metadata", timeout=10) as response:
        return json.loads(response.read())["version"]


def container_ids() -> list[str]:
    found = subprocess.run(["docker", "ps", "-aq", "--filter", "label=io.github.gitops-ml.model=churn-model"],
                           capture_output=True, text=True)
    return found.stdout.split()


if __name__ == "__main__":
    sys.exit(main())

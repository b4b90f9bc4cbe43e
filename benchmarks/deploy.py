"""Deploy benchmark: what clients see while `gitops-ml deploy` replaces the serving version under load.

    make bench-deploy      (or: .venv/bin/python benchmarks/deploy.py [--deploys 3] [--connections 32])

All real and all on this machine:
1. generates a model repository, registers two versions that predict differently (the template's
   parameters, and much stronger regularisation) in a SQLite MLflow registry;
2. starts an OCI registry (Debian's `docker-registry`) and HAProxy with the generated repository's
   own deploy/docker/haproxy.cfg;
3. `gitops-ml build-image` for both versions (pushed; deploys use the digests);
4. deploys version 1, measures `--seconds` of steady load with no deploy (the baseline), then runs
   `--deploys` deploys (versions 2, 1, 2, ...), each under the same load: `--connections`
   keep-alive connections sending one-row /predict requests through the proxy, from one second
   before the deploy starts until one second after it ends;
5. prints, per run: requests served, failed, requests/s, raw p50/p99/max latency, the longest gap
   between two completed responses (the pause clients saw) and the deploy step it fell in, the
   longest gap from the switch to the old container's removal, and the deploy's step timings.

`gitops-ml deploy` runs as its own process (as in CI); the load generator runs in this one.
Needs a Docker engine, `docker-registry` and `haproxy` (scripts/setup.sh --test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import loadgen  # noqa: E402 - the sibling script, imported as a module

PROJECT = "bench-deploy"
ENVIRONMENT = "bench"
BIN = Path(sys.executable).parent


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sh(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"`{' '.join(map(str, args))}` failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def wait_until(check, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not come up within {timeout:g} s")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def register_two_versions(project: Path, workdir: Path) -> None:
    """Versions 1 and 2 of the project's model in a SQLite registry, as `gitops-ml train` would."""
    import mlflow
    import yaml
    from gitops_ml.core.contract import load_contract
    from gitops_ml.core.dataset import read_typed, target_array, to_matrix
    from gitops_ml.io.model_dir import log_model
    from sklearn.model_selection import train_test_split

    contract = load_contract(project)
    frame = read_typed(project / contract.data.train, contract)
    train, test = train_test_split(frame, test_size=contract.data.test_size, random_state=contract.data.split_seed)
    (project / "data/split").mkdir(parents=True, exist_ok=True)
    train.to_csv(project / "data/split/train.csv", index=False)
    test.to_csv(project / "data/split/test.csv", index=False)
    sys.path.insert(0, str(project / "src"))
    from bench_deploy.features import build_pipeline

    params = yaml.safe_load((project / "params.yaml").read_text())["train"]
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    mlflow.set_experiment(experiment_id=mlflow.create_experiment(PROJECT, str(workdir / "artifacts")))
    for hyper in (params, {**params, "logistic_regression": {"C": 0.002, "max_iter": 500}}):
        model = build_pipeline(contract, hyper).fit(to_matrix(train, contract.data.features),
                                                    target_array(train, contract))
        with mlflow.start_run():
            log_model(model, contract, PROJECT)


def configure(project: Path, registry: str, proxy_url: str, admin: str) -> None:
    import yaml

    path = project / "gitops-ml.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["registry"]["image"] = f"{registry}/{PROJECT}"
    raw["deploy"]["environments"] = {ENVIRONMENT: {"url": proxy_url, "proxy": {"admin": admin}}}
    raw["deploy"]["drain_timeout_s"] = 10
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def under_load(url: str, body: bytes, connections: int, action, settle_s: float = 1.0,
               completions: list[float] | None = None) -> dict:
    """Load `url` from `settle_s` before `action()` until `settle_s` after it; the load's figures."""
    stop, outcome = threading.Event(), {}

    def run() -> None:
        outcome.update(asyncio.run(loadgen.run(url, body, connections, seconds=3600, max_requests=10**9, stop=stop,
                                               completions=completions)))

    thread = threading.Thread(target=run)
    thread.start()
    try:
        time.sleep(settle_s)
        action()
        time.sleep(settle_s)
    finally:
        stop.set()
        thread.join()
    return outcome


def longest_gap_ms(completions: list[float], start: float, end: float) -> float:
    """The longest time between completed responses within [start, end] (epoch seconds), edges included."""
    inside = sorted(t for t in completions if start <= t <= end)
    points = [start, *inside, end]
    return round(max(b - a for a, b in zip(points[:-1], points[1:], strict=True)) * 1000, 1)


def window(started_at: float, steps: dict[str, float], first: str, last: str) -> tuple[float, float]:
    """Epoch seconds from the start of step `first` to the end of step `last`."""
    start = started_at
    for step, seconds in steps.items():
        if step == first:
            break
        start += seconds
    end = started_at + sum(list(steps.values())[: list(steps).index(last) + 1])
    return start, end


def step_at(moment: float | None, started_at: float, steps: dict[str, float]) -> str:
    """Which deploy step was running at `moment` (seconds since the epoch)."""
    if moment is None:
        return "-"
    end = started_at
    for step, seconds in steps.items():
        end += seconds
        if moment < end:
            return step if moment >= started_at else "before the deploy"
    return "after the deploy"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deploys", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the no-deploy baseline")
    parser.add_argument("--base-image", default=os.environ.get("BASE_IMAGE", "gitops-ml/python-base:bookworm"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    for tool in ("docker-registry", "haproxy"):
        if not shutil.which(tool):
            sys.exit(f"`{tool}` is not installed: run scripts/setup.sh --test")

    workdir = Path(tempfile.mkdtemp(prefix="gitops-ml-bench-deploy-"))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
           "GITOPS_ML_DVC_REMOTE_ROOT": str(workdir / "dvc-remote")}
    for leaked in ("GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_SHA"):
        env.pop(leaked, None)
    os.environ.update({k: env[k] for k in ("MLFLOW_TRACKING_URI", "GITOPS_ML_DVC_REMOTE_ROOT")})
    processes: list[subprocess.Popen] = []
    import docker

    client = docker.from_env()
    try:
        log(f"generating {PROJECT} in {workdir}, registering versions 1 and 2")
        sh([str(BIN / "cookiecutter"), str(ROOT), "--no-input", "--output-dir", str(workdir), f"project={PROJECT}"],
           workdir, env)
        project = workdir / PROJECT
        register_two_versions(project, workdir)

        registry = f"127.0.0.1:{free_port()}"
        (workdir / "registry.yml").write_text(json.dumps({
            "version": 0.1, "log": {"level": "error"}, "http": {"addr": registry},
            "storage": {"filesystem": {"rootdirectory": str(workdir / "registry")}}}))
        processes.append(subprocess.Popen(["docker-registry", "serve", str(workdir / "registry.yml")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        proxy_port, admin_port = free_port(), free_port()
        processes.append(subprocess.Popen(
            ["haproxy", "-db", "-f", str(project / "deploy/docker/haproxy.cfg")],
            env={**env, "PROXY_BIND": f"127.0.0.1:{proxy_port}", "PROXY_ADMIN": f"ipv4@127.0.0.1:{admin_port}"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: answers(f"http://{registry}/v2/"), "the registry")
        wait_until(lambda: listens(admin_port), "haproxy")
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        configure(project, registry, proxy_url, f"tcp://127.0.0.1:{admin_port}")

        gitops = [str(BIN / "gitops-ml")]
        for version in ("1", "2"):
            log(f"gitops-ml build-image --version {version} (build and push)")
            sh([*gitops, "build-image", "--version", version, "--base-image", args.base_image], project, env)
            shutil.copy(project / "build/golden.json", project / f"build/golden-{version}.json")

        def deploy(version: str) -> dict:
            sh([*gitops, "deploy", "--environment", ENVIRONMENT, "--version", version,
                "--golden", f"build/golden-{version}.json"], project, env)
            return json.loads((project / "reports" / f"deploy-{ENVIRONMENT}.json").read_text())

        log("deploying version 1")
        deploy("1")
        body = json.dumps(json.loads((project / "build/golden-1.json").read_text())["rows"][0]).encode()
        url = f"{proxy_url}/predict"
        log(f"baseline: {args.seconds:g} s of load, no deploy")
        runs = [{"run": "no deploy", **under_load(url, body, args.connections, lambda: time.sleep(args.seconds), 0)}]
        for i in range(args.deploys):
            version = "2" if i % 2 == 0 else "1"
            log(f"deploy {i + 1}/{args.deploys}: version {version} under load")
            done: dict = {}
            completions: list[float] = []
            figures = under_load(url, body, args.connections, lambda v=version, out=done: out.update(deploy(v)),
                                 completions=completions)
            steps, started_at = done["timings_s"], done["started_at"]
            runs.append({"run": f"deploy v{version}", **figures, "deploy_s": round(sum(steps.values()), 2),
                         "steps_s": steps, "gap_during": step_at(figures["max_gap_at"], started_at, steps),
                         "switch_gap_ms": longest_gap_ms(completions, *window(started_at, steps, "switch", "retire"))})
    finally:
        for found in client.containers.list(all=True, filters={"label": f"io.github.gitops-ml.model={PROJECT}"}):
            found.remove(force=True)
        for image in client.images.list(name=f"*/{PROJECT}"):
            client.images.remove(image.id, force=True)
        for process in processes:
            process.terminate()
            process.wait(timeout=15)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{platform.node()}: {os.cpu_count()} CPUs, {args.connections} connections, one-row /predict "
          "through HAProxy; raw latencies in ms\n")
    print("| run | requests | failed | req/s | p50 | p99 | max | longest gap | gap during | longest gap in "
          "switch..retire | deploy s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for run in runs:
        print(f"| {run['run']} | {run['requests']:,} | {run['errors']} | {run['rps']:,.0f} | {run['p50_ms']:.1f} | "
              f"{run['p99_ms']:.1f} | {run['max_ms']:.0f} | {run['max_gap_ms']:.0f} | {run.get('gap_during', '')} | "
              f"{run.get('switch_gap_ms', '')} | {run.get('deploy_s', '')} |")
    for run in runs[1:]:
        print(f"{run['run']}: " + ", ".join(f"{step} {seconds:.2f} s" for step, seconds in run["steps_s"].items()))
    failed = sum(run["errors"] for run in runs)
    print(f"\nzero failed requests across {args.deploys} deploys: {'PASS' if failed == 0 else f'FAIL ({failed})'}")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2) + "\n")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

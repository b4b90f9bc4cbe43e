"""Serving benchmark: the generated app against `mlflow models serve` and MLServer, same model version.

    make bench                       (or: .venv/bin/python benchmarks/serve.py [--seconds 5] [--reps 3])

What it does, all on 127.0.0.1:
1. generates a model repo (classification, logistic regression), trains and registers version 1
   in a SQLite MLflow registry, and bakes that version into a folder as the image would;
2. starts our app twice (prediction log on, and off: PREDICTION_LOG_DIR=off), `mlflow models
   serve` (the registered candidate version, local env) and, when it installs (its own venv, never the dev lock),
   MLServer with mlserver-sklearn on the same pipeline (one process, adaptive batching off and on),
   each pinned to CPU 0, and records startup-to-ready time;
3. checks they return identical predictions on 100 held-out rows (MLServer: on the rows without
   missing values, which its V2 tensors cannot carry);
4. drives each with the bounded load generator (benchmarks/loadgen.py, pinned to CPU 1) for one
   row and 100-row batches at 1 and 32 connections, alternating servers, `--reps` times;
5. measures the limits on the same machine in the same run: each candidate HTTP stack's ceiling
   (a constant endpoint at 32 connections: benchmarks/stacks.py on FastAPI, Starlette and plain
   ASGI, httptools and h11, uvloop and asyncio, today's versions and MLServer's older pins, plus
   our app's own /health and MLServer's) and the compute floor (one-row prediction in-process);
6. prints tables (requests/s, raw p50/p99, errors, RSS; medians over repetitions), the ratios,
   logging on / off, and each target as PASS/FAIL; `--json FILE` also writes the figures.

Latencies are raw per-request times from the load generator (no coordinated-omission correction).
On a shared machine the figures move with the other load: compare cells of the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOADGEN = ROOT / "benchmarks" / "loadgen.py"
STACKS = ROOT / "benchmarks" / "stacks.py"
MLSERVER = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1"]
PROJECT = "bench-model"
PACKAGE = "bench_model"
SERVER_CPU, CLIENT_CPU = "0", "1"


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def sh(args: list[str], cwd: Path, env: dict) -> None:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"`{' '.join(args)}` failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def pinned(cpu: str, args: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *args] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else args


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (mlflow serves from a child process)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pending.extend(int(child) for child in children)
        except (OSError, StopIteration):
            continue
    return total / 1024


class Server:
    def __init__(self, name: str, args: list[str], cwd: Path, env: dict, port: int, ready_path: str,
                 timeout: float = 120):
        self.name, self.port = name, port
        started = time.perf_counter()
        self.process = subprocess.Popen(pinned(SERVER_CPU, args), cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"{name} exited with {self.process.returncode} while starting")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            sys.exit(f"{name} was not ready within {timeout:g} s")
        self.startup_s = time.perf_counter() - started

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def post(self, path: str, body: bytes) -> dict:
        request = urllib.request.Request(self.url(path), data=body, headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def load(url: str, body: Path | None, connections: int, seconds: float, python: str) -> dict:
    args = [python, str(LOADGEN), "--url", url, "--connections", str(connections), "--seconds", str(seconds)]
    if body:
        args += ["--body", str(body)]
    result = subprocess.run(pinned(CLIENT_CPU, args), capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def prepare(workdir: Path) -> tuple[Path, dict]:
    """Generate, install, train and bake the benchmark model; returns the project and its env."""
    venv = workdir / "venv"
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "GITOPS_ML_DVC_REMOTE_ROOT": str(workdir / "dvc-remote"), "MLFLOW_TRACKING_URI": ""}
    for leaked in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "GITHUB_ACTIONS"):
        env.pop(leaked, None)
    cookiecutter = Path(sys.executable).parent / "cookiecutter"
    log(f"generating {PROJECT} in {workdir}")
    sh([str(cookiecutter), str(ROOT), "--no-input", "--output-dir", str(workdir), f"project={PROJECT}"], workdir, env)
    project = workdir / PROJECT
    log("installing it (make setup)")
    sh(["make", "setup", f"VENV={venv}", f"GITOPS_ML={ROOT / 'actions'}"], project, env)
    log("training and registering version 1 (make train)")
    sh(["make", "train", f"VENV={venv}"], project, env)
    sh([str(venv / "bin" / "gitops-ml"), "bake", "--model", model_uri(project), "--out", "build/model"], project, env)
    # As in the image: the pipeline compiled to numpy arrays (compiled.py), checked equal to it.
    sh([str(venv / "bin" / "python"), "-m", f"{PACKAGE}.compiled", "build/model"], project, env)
    # As in the image: bytecode compiled once, or every start recompiles every module (3x slower).
    sh([str(venv / "bin" / "python"), "-m", "compileall", "-q", str(venv), str(project / "src")], project, env)
    return project, env


def payloads(project: Path, workdir: Path, python: str) -> tuple[dict[str, dict[str, Path]], list[dict]]:
    """One row and 100 rows from the held-out split, in our format, MLflow's and MLServer's (V2)."""
    script = f"""
import json, math, pandas as pd
frame = pd.read_csv("data/split/test.csv")
features = [c for c in frame.columns if c != "churned"]
rows = [{{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}}
        for r in frame[features].to_dict("records")]
json.dump({{"features": features, "rows": rows}}, open("{workdir / 'rows.json'}", "w"))
"""
    subprocess.run([python, "-c", script], cwd=project, check=True)
    data = json.loads((workdir / "rows.json").read_text())
    complete = [r for r in data["rows"] if None not in r.values()]  # V2 tensors carry no nulls
    rows = complete[:1] + [r for r in data["rows"] if r is not complete[0]][:99]
    bodies: dict[str, dict[str, Path]] = {"ours": {}, "mlflow": {}, "mlserver": {}}
    for label, chosen in (("1 row", rows[:1]), ("100 rows", rows)):
        ours = workdir / f"ours-{len(chosen)}.json"
        ours.write_text(json.dumps(chosen[0] if len(chosen) == 1 else {"rows": chosen}))
        theirs = workdir / f"mlflow-{len(chosen)}.json"
        split = {"columns": data["features"], "data": [[r[f] for f in data["features"]] for r in chosen]}
        theirs.write_text(json.dumps({"dataframe_split": split}))
        bodies["ours"][label], bodies["mlflow"][label] = ours, theirs
    v2 = workdir / "mlserver-1.json"
    v2.write_text(json.dumps(v2_body(complete[:1], data["features"])))
    bodies["mlserver"]["1 row"] = v2
    return bodies, complete[:100]


def v2_body(rows: list[dict], features: list[str]) -> dict:
    """Rows as an Open Inference Protocol (V2) request, one tensor per column, decoded as a DataFrame."""
    def tensor(name: str) -> dict:
        values = [r[name] for r in rows]
        kind = "BYTES" if isinstance(values[0], str) else "FP64" if isinstance(values[0], float) else "INT64"
        return {"name": name, "shape": [len(rows)], "datatype": kind, "data": values}

    return {"parameters": {"content_type": "pd"}, "inputs": [tensor(f) for f in features],
            "outputs": [{"name": "predict_proba"}]}


def mlserver_env(workdir: Path, project_python: str) -> tuple[str | None, str]:
    """A venv with MLServer and the project's scikit-learn (never the dev lock); (python, why not)."""
    version = subprocess.run([project_python, "-c", "import sklearn; print(sklearn.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    venv = workdir / "mlserver-venv"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    steps = [["uv", "venv", "-q", "-p", sys.executable, str(venv)],
             ["uv", "pip", "install", "-q", "-p", str(venv / "bin" / "python"), *MLSERVER, f"scikit-learn=={version}",
              "skops", "httptools"]]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            return None, f"`{' '.join(step[:4])}` failed: {result.stderr.strip()[-300:]}"
    return str(venv / "bin" / "python"), ""


def mlserver_folders(workdir: Path, project: Path, python: str, ports: dict[str, tuple[int, int, int]]) -> dict:
    """MLServer model folders for the baked pipeline (exported to joblib: MLServer's sklearn format)."""
    export = f"""
import glob, joblib, skops.io
path = glob.glob("{project / 'build' / 'model'}/*.skops")[0]
joblib.dump(skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path)), "{workdir / 'model.joblib'}")
"""
    subprocess.run([python, "-c", export], check=True)  # our own model, just trained: trusted here only
    folders = {}
    for name, batching in (("mlserver", None), ("mlserver-batch", {"max_batch_size": 32, "max_batch_time": 0.001})):
        folder = workdir / name
        (folder / "model").mkdir(parents=True)
        shutil.copy(workdir / "model.joblib", folder / "model" / "model.joblib")
        settings = {"name": "bench", "implementation": "mlserver_sklearn.SKLearnModel",
                    "parameters": {"uri": "./model.joblib", "version": "1"}, **(batching or {})}
        (folder / "model" / "model-settings.json").write_text(json.dumps(settings))
        http, grpc, metrics = ports[name]
        (folder / "settings.json").write_text(json.dumps({"http_port": http, "grpc_port": grpc, "metrics_port": metrics,
                                                          "host": "127.0.0.1", "parallel_workers": 0, "debug": False}))
        folders[name] = folder
    return folders


def ceilings(servers: dict, python: str, mlserver_python: str | None, seconds: float, workdir: Path,
             one_row: Path) -> list[dict]:
    """Each candidate HTTP stack's constant endpoint at 32 connections, one after the other on CPU 0.
    GET, except one POST of the one-row request body (read, then the constant answer): the HTTP cost
    of the very request /predict gets, for comparison."""
    candidates = [("fastapi", "httptools", "uvloop", python, "FastAPI route", None),
                  ("fastapi", "h11", "uvloop", python, "FastAPI route, h11", None),
                  ("fastapi", "httptools", "asyncio", python, "FastAPI route, asyncio loop", None),
                  ("starlette", "httptools", "uvloop", python, "Starlette route (no FastAPI)", None),
                  ("asgi", "httptools", "uvloop", python, "plain ASGI (no framework)", None),
                  ("asgi", "httptools", "uvloop", python, "plain ASGI, POST of the 1-row body", one_row),
                  ("asgi", "h11", "uvloop", python, "plain ASGI, h11", None)]
    if mlserver_python:
        candidates += [("fastapi", "httptools", "uvloop", mlserver_python, "FastAPI route, MLServer's pins", None),
                       ("starlette", "httptools", "uvloop", mlserver_python, "Starlette route, MLServer's pins",
                        None),
                       ("asgi", "httptools", "uvloop", mlserver_python, "plain ASGI, MLServer's pins", None)]
    found = []
    for app, http, loop, interpreter, label, body in candidates:
        versions = subprocess.run([interpreter, "-c", "import importlib.metadata as m; print(' '.join(f'{p} '"
                                   "+ m.version(p) for p in ('fastapi', 'starlette', 'uvicorn', 'uvloop')))"],
                                  capture_output=True, text=True).stdout.strip()
        port = free_port()
        server = Server(label, [interpreter, str(STACKS), "--app", app, "--http", http, "--loop", loop, "--port",
                                str(port)], workdir, dict(os.environ), port, "/health", timeout=60)
        try:
            run = load(server.url("/health"), body, 32, seconds, python)
        finally:
            server.stop()
        found.append({"stack": label, "versions": versions, "post": body is not None, **run})
        log(f"ceiling {label}: {run['rps']:,.0f} req/s")
    for name, path, label in (("ours", "/health", "our app's /health (ServingApp, plain ASGI)"),
                              ("mlserver", "/v2/health/live", "MLServer's /v2/health/live")):
        if name in servers:
            run = load(servers[name].url(path), None, 32, seconds, python)
            found.append({"stack": label, "versions": "", **run})
            log(f"ceiling {label}: {run['rps']:,.0f} req/s")
    return found


def compute_floor_ms(project: Path, python: str) -> dict[str, float]:
    """In-process time of one-row predictions through the serving path (the compiled model, as in the image)."""
    script = f"""
import json, time
from {PACKAGE} import serve
loaded = serve.load("build/model")
predictor = serve.Predictor(loaded)
row = json.load(open("../ours-1.json"))
values = [[float("nan") if row[n] is None else row[n] for n in predictor.names]]
def per_call(fn, n=3000):
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1000
print(json.dumps({{"serving_path_ms": per_call(lambda: predictor.predict_values(values)),
                  "model": type(loaded.model).__name__}}))
"""
    out = subprocess.run(pinned(SERVER_CPU, [python, "-c", script]), cwd=project, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_run(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda r: r["rps"])
    middle = ordered[len(ordered) // 2]
    return {**middle, "rps": statistics.median(r["rps"] for r in runs), "errors": sum(r["errors"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs)}


def model_uri(project: Path) -> str:
    return json.loads((project / "reports" / "train.json").read_text())["model_uri"]


def start_servers(project: Path, workdir: Path, env: dict, python: str, mlserver_python: str | None) -> dict:
    tracking = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    ours = [python, "-m", f"{PACKAGE}.serve", "--model", "build/model", "--port"]
    logged = {**env, "PREDICTION_LOG_DIR": str(workdir / "predictions")}
    servers = {}
    port = free_port()
    servers["ours"] = Server("ours", [*ours, str(port)], project, logged, port, "/ready")
    port = free_port()
    servers["ours-nolog"] = Server("ours-nolog", [*ours, str(port)], project, {**env, "PREDICTION_LOG_DIR": "off"},
                                   port, "/ready")
    port = free_port()
    servers["mlflow"] = Server("mlflow", [str(workdir / "venv" / "bin" / "mlflow"), "models", "serve", "-m",
                                          model_uri(project), "--env-manager", "local", "--host", "127.0.0.1",
                                          "--port", str(port), "--workers", "1"], project, tracking, port, "/ping")
    if mlserver_python:
        ports = {name: (free_port(), free_port(), free_port()) for name in ("mlserver", "mlserver-batch")}
        folders = mlserver_folders(workdir, project, mlserver_python, ports)
        quiet = {**env, "PYTHONWARNINGS": "ignore"}  # sklearn warns per request about DataFrame feature names
        for name, folder in folders.items():
            servers[name] = Server(name, [str(Path(mlserver_python).parent / "mlserver"), "start", str(folder)],
                                   folder, quiet, ports[name][0], "/v2/models/bench/ready")
    return servers


def identical_predictions(servers: dict, bodies: dict, complete: list[dict], features: list[str]) -> dict[str, bool]:
    ours = servers["ours"].post("/predict", bodies["ours"]["100 rows"].read_bytes())["predictions"]
    theirs = servers["mlflow"].post("/invocations", bodies["mlflow"]["100 rows"].read_bytes())["predictions"]
    same = {"mlflow": ours == theirs}
    if "mlserver" in servers:
        ours = servers["ours"].post("/predict", json.dumps({"rows": complete}).encode())
        for name in ("mlserver", "mlserver-batch"):
            answer = servers[name].post("/v2/models/bench/infer", json.dumps(v2_body(complete, features)).encode())
            proba = answer["outputs"][0]["data"]
            positive = proba[1::2]  # predict_proba, flattened: [p0, p1, p0, p1, ...]
            same[name] = all(abs(a - b) < 1e-9 for a, b in zip(ours["probabilities"], positive, strict=True))
    return same


CELLS = {  # server: the cells it is measured in
    "ours": [("1 row", 1), ("1 row", 32), ("100 rows", 1), ("100 rows", 32)],
    "ours-nolog": [("1 row", 1), ("1 row", 32)],
    "mlflow": [("1 row", 1), ("1 row", 32), ("100 rows", 1), ("100 rows", 32)],
    "mlserver": [("1 row", 1), ("1 row", 32)],
    "mlserver-batch": [("1 row", 1), ("1 row", 32)],
}
PATHS = {"ours": "/predict", "ours-nolog": "/predict", "mlflow": "/invocations", "mlserver": "/v2/models/bench/infer",
         "mlserver-batch": "/v2/models/bench/infer"}


def body_of(name: str, bodies: dict, label: str) -> Path:
    return bodies["ours" if name.startswith("ours") else "mlserver" if name.startswith("mlserver") else name][label]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load run")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each configuration")
    parser.add_argument("--no-mlserver", action="store_true", help="leave MLServer out")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="gitops-ml-bench-"))
    project, env = prepare(workdir)
    python = str(workdir / "venv" / "bin" / "python")
    bodies, complete = payloads(project, workdir, python)
    features = json.loads((workdir / "rows.json").read_text())["features"]
    floor = compute_floor_ms(project, python)
    mlserver_python, skipped = (None, "--no-mlserver") if args.no_mlserver else mlserver_env(workdir, python)
    if skipped:
        log(f"MLServer left out: {skipped}")

    log("starting the servers (CPU 0) and measuring startup to ready")
    servers = start_servers(project, workdir, env, python, mlserver_python)
    try:
        identical = identical_predictions(servers, bodies, complete, features)
        log(f"identical predictions: {identical}")
        stacks = ceilings(servers, python, mlserver_python, args.seconds, workdir, bodies["ours"]["1 row"])
        results: dict[tuple[str, str, int], list[dict]] = {}
        for rep in range(args.reps):
            names = list(servers) if rep % 2 == 0 else list(reversed(servers))
            for name in names:
                for label, connections in CELLS[name]:
                    log(f"rep {rep + 1}/{args.reps}: {name:14} {label:8} x{connections:<2} connections")
                    run = load(servers[name].url(PATHS[name]), body_of(name, bodies, label), connections,
                               args.seconds, python)
                    run["rss_mb"] = round(rss_mb(servers[name].process.pid), 1)
                    results.setdefault((name, label, connections), []).append(run)
        startup = {name: round(server.startup_s, 2) for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
    report(args, results, stacks, floor, startup, identical, skipped)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(args, results, stacks, floor, startup, identical, skipped) -> None:
    table = {key: median_run(runs) for key, runs in results.items()}
    best = max(stacks, key=lambda s: s["rps"])
    print(f"\nServing benchmark: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"servers on CPU {SERVER_CPU}, load generator on CPU {CLIENT_CPU}; "
          f"{args.reps} x {args.seconds:g} s per cell, medians; raw latencies; 1-minute load average at the end: "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| server | payload | conns | req/s | p50 ms | p99 ms | errors | RSS MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    order = list(CELLS)
    for (name, label, connections), row in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][2],
                                                                                   order.index(kv[0][0]))):
        print(f"| {name} | {label} | {connections} | {row['rps']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
              f"| {row['errors']} | {row['rss_mb']:.0f} |")
    print("\n| payload | conns | ours / mlflow |\n| --- | ---: | ---: |")
    ratios = {}
    for label, connections in CELLS["mlflow"]:
        ratio = table[("ours", label, connections)]["rps"] / max(table[("mlflow", label, connections)]["rps"], 1e-9)
        ratios[(label, connections)] = ratio
        print(f"| {label} | {connections} | {ratio:.1f}x |")
    print("\nHTTP stacks, constant endpoint, 32 connections (the ceiling of any app on that stack):\n")
    print("| stack | versions | req/s | p50 ms | p99 ms |\n| --- | --- | ---: | ---: | ---: |")
    for stack in sorted(stacks, key=lambda s: -s["rps"]):
        print(f"| {stack['stack']} | {stack['versions']} | {stack['rps']:,.0f} | {stack['p50_ms']:.2f} "
              f"| {stack['p99_ms']:.2f} |")
    one32, nolog32 = table[("ours", "1 row", 32)], table[("ours-nolog", "1 row", 32)]
    logging_ratio = one32["rps"] / max(nolog32["rps"], 1e-9)
    combined_limit = 1 / (1 / best["rps"] + floor["serving_path_ms"] / 1000)
    print(f"\nlogging on / off, 1 row x32: {one32['rps']:,.0f} / {nolog32['rps']:,.0f} req/s = {logging_ratio:.0%}")
    print(f"best ceiling: {best['stack']} {best['rps']:,.0f} req/s; 1 row x32 with logging on reaches "
          f"{one32['rps'] / best['rps']:.0%} of it")
    for stack in stacks:
        if stack.get("post"):
            print(f"the same request's ceiling ({stack['stack']}): {stack['rps']:,.0f} req/s; 1 row x32 with logging "
                  f"on reaches {one32['rps'] / stack['rps']:.0%} of it")
    print(f"compute floor {floor['serving_path_ms']:.3f} ms per row in-process ({floor['model']}); combined limit "
          f"with the best ceiling {combined_limit:,.0f} req/s")
    print(f"startup to ready: {', '.join(f'{n} {s} s' for n, s in startup.items())}; identical predictions: "
          f"{identical}{f'; MLServer left out: {skipped}' if skipped else ''}\n")
    for name in ("mlserver", "mlserver-batch"):
        if ("ours", "1 row", 32) in table and (name, "1 row", 32) in table:
            print(f"ours / {name}, 1 row x32: {one32['rps'] / table[(name, '1 row', 32)]['rps']:.1f}x")
    targets = [
        ("1 row x32: logging on within 10% of logging off", logging_ratio >= 0.9, f"{logging_ratio:.0%}"),
        ("1 row x32, logging on: >= 80% of the best constant-endpoint ceiling", one32["rps"] >= 0.8 * best["rps"],
         f"{one32['rps'] / best['rps']:.0%} of {best['rps']:,.0f}"),
        ("1 row x32: >= 10x mlflow", ratios[("1 row", 32)] >= 10, f"{ratios[('1 row', 32)]:.1f}x"),
        ("1 row x32: p99 <= 3x p50", one32["p99_ms"] <= 3 * one32["p50_ms"],
         f"{one32['p99_ms']:.1f} / {one32['p50_ms']:.1f} ms"),
        ("100 rows x32: >= 5x mlflow", ratios[("100 rows", 32)] >= 5, f"{ratios[('100 rows', 32)]:.1f}x"),
        ("startup to ready < 5 s", startup["ours"] < 5, f"{startup['ours']} s"),
        ("zero errors", all(row["errors"] == 0 for row in table.values()), ""),
        ("identical predictions", all(identical.values()), ""),
    ]
    for name, ok, seen in targets:
        print(f"{'PASS' if ok else 'FAIL'}  {name}  {seen}")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": {"node": platform.node(), "cores": os.cpu_count(), "python": platform.python_version(),
                        "load_average": os.getloadavg()},
            "cells": [{"server": n, "payload": p, "connections": c, **row} for (n, p, c), row in table.items()],
            "stacks": stacks, "compute_floor_ms": floor, "logging_ratio": logging_ratio, "startup_s": startup,
            "identical": identical, "mlserver_skipped": skipped,
            "targets": [{"target": n, "pass": ok, "seen": s} for n, ok, s in targets],
        }, indent=2))


if __name__ == "__main__":
    sys.exit(main())

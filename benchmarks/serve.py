"""Serving benchmark: the generated FastAPI app against `mlflow models serve`, same model version.

    make bench                       (or: .venv/bin/python benchmarks/serve.py [--seconds 5] [--reps 3])

What it does, all on 127.0.0.1:
1. generates a model repo (classification, logistic regression), trains and registers version 1
   in a SQLite MLflow registry, and bakes that version into a folder as the image would;
2. starts our app (baked folder) and `mlflow models serve` (models:/NAME/1, local env), each
   pinned to CPU 0, and records startup-to-ready time;
3. checks both return identical predictions on 100 held-out rows;
4. drives each with the bounded load generator (benchmarks/loadgen.py, pinned to CPU 1) for one
   row and 100-row batches at 1 and 32 connections, alternating servers, `--reps` times;
5. measures the limits on the same machine in the same run: the HTTP ceiling (our app's constant
   /health endpoint at 32 connections) and the compute floor (one-row prediction in-process);
6. prints a table (requests/s, raw p50/p99, errors, RSS; medians over repetitions), the ratios
   ours/mlflow, and each target as PASS/FAIL; `--json FILE` also writes the figures.

Latencies are raw per-request times from the load generator (no coordinated-omission correction).
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
    def __init__(self, name: str, args: list[str], cwd: Path, env: dict, port: int, ready_path: str):
        self.name, self.port = name, port
        started = time.perf_counter()
        self.process = subprocess.Popen(pinned(SERVER_CPU, args), cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = started + 120
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
            sys.exit(f"{name} was not ready within 120 s")
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
    sh([str(venv / "bin" / "gitops-ml"), "bake", "--model", "1", "--out", "build/model"], project, env)
    # As in the image: bytecode compiled once, or every start recompiles every module (3x slower).
    sh([str(venv / "bin" / "python"), "-m", "compileall", "-q", str(venv), str(project / "src")], project, env)
    return project, env


def payloads(project: Path, workdir: Path, python: str) -> dict[str, dict[str, Path]]:
    """One row and 100 rows from the held-out split, in our format and in MLflow's."""
    script = f"""
import json, math, pandas as pd
frame = pd.read_csv("data/split/test.csv")
features = [c for c in frame.columns if c != "churned"]
rows = [{{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}}
        for r in frame[features].head(100).to_dict("records")]
json.dump({{"features": features, "rows": rows}}, open("{workdir / 'rows.json'}", "w"))
"""
    subprocess.run([python, "-c", script], cwd=project, check=True)
    data = json.loads((workdir / "rows.json").read_text())
    bodies: dict[str, dict[str, Path]] = {"ours": {}, "mlflow": {}}
    for label, rows in (("1 row", data["rows"][:1]), ("100 rows", data["rows"])):
        ours = workdir / f"ours-{len(rows)}.json"
        ours.write_text(json.dumps(rows[0] if len(rows) == 1 else {"rows": rows}))
        theirs = workdir / f"mlflow-{len(rows)}.json"
        split = {"columns": data["features"], "data": [[r[f] for f in data["features"]] for r in rows]}
        theirs.write_text(json.dumps({"dataframe_split": split}))
        bodies["ours"][label], bodies["mlflow"][label] = ours, theirs
    return bodies


def compute_floor_ms(project: Path, python: str) -> dict[str, float]:
    """In-process time of one-row predictions: the serving path, and the raw sklearn pipeline."""
    script = f"""
import json, time, numpy as np
from {PACKAGE} import serve
loaded = serve.load("build/model")
predictor = serve.Predictor(loaded)
row = json.load(open("../ours-1.json"))
values = [[float("nan") if row[n] is None else row[n] for n in predictor.names]]
matrix = np.array(values, dtype=object)
def per_call(fn, n=3000):
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1000
print(json.dumps({{"serving_path_ms": per_call(lambda: predictor.predict_values(values)),
                  "sklearn_pipeline_ms": per_call(lambda: loaded.model.predict_proba(matrix), 1000)}}))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load run")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each configuration")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="gitops-ml-bench-"))
    project, env = prepare(workdir)
    python = str(workdir / "venv" / "bin" / "python")
    bodies = payloads(project, workdir, python)
    floor = compute_floor_ms(project, python)

    tracking = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    port_ours, port_mlflow = free_port(), free_port()
    log("starting both servers (CPU 0) and measuring startup to ready")
    servers = {
        "ours": Server("ours", [python, "-m", f"{PACKAGE}.serve", "--model", "build/model", "--port", str(port_ours)],
                       project, env, port_ours, "/ready"),
        "mlflow": Server("mlflow", [str(workdir / "venv" / "bin" / "mlflow"), "models", "serve", "-m",
                                    f"models:/{PROJECT}/1", "--env-manager", "local", "--host", "127.0.0.1",
                                    "--port", str(port_mlflow), "--workers", "1"],
                         project, tracking, port_mlflow, "/ping"),
    }
    try:
        ours = servers["ours"].post("/predict", bodies["ours"]["100 rows"].read_bytes())["predictions"]
        theirs = servers["mlflow"].post("/invocations", bodies["mlflow"]["100 rows"].read_bytes())["predictions"]
        identical = ours == theirs
        log(f"identical predictions on 100 held-out rows: {identical}")
        ceiling = load(servers["ours"].url("/health"), None, 32, args.seconds, python)
        results: dict[tuple[str, str, int], list[dict]] = {}
        configs = [(label, c) for label in ("1 row", "100 rows") for c in (1, 32)]
        for rep in range(args.reps):
            order = ["ours", "mlflow"] if rep % 2 == 0 else ["mlflow", "ours"]
            for label, connections in configs:
                for name in order:
                    path = "/predict" if name == "ours" else "/invocations"
                    log(f"rep {rep + 1}/{args.reps}: {name:6} {label:8} x{connections:<2} connections")
                    run = load(servers[name].url(path), bodies[name][label], connections, args.seconds, python)
                    run["rss_mb"] = round(rss_mb(servers[name].process.pid), 1)
                    results.setdefault((name, label, connections), []).append(run)
        startup = {name: round(server.startup_s, 2) for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()

    table = {key: median_run(runs) for key, runs in results.items()}
    http_ceiling = ceiling["rps"]
    combined_limit = 1 / (1 / http_ceiling + floor["serving_path_ms"] / 1000)
    print(f"\nServing benchmark: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"servers on CPU {SERVER_CPU}, load generator on CPU {CLIENT_CPU}; "
          f"{args.reps} x {args.seconds:g} s per cell, medians; raw latencies\n")
    print("| server | payload | conns | req/s | p50 ms | p99 ms | errors | RSS MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (name, label, connections), row in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        print(f"| {name} | {label} | {connections} | {row['rps']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
              f"| {row['errors']} | {row['rss_mb']:.0f} |")
    print("\n| payload | conns | ours / mlflow |\n| --- | ---: | ---: |")
    ratios = {}
    for label, connections in configs:
        ratio = table[("ours", label, connections)]["rps"] / max(table[("mlflow", label, connections)]["rps"], 1e-9)
        ratios[(label, connections)] = ratio
        print(f"| {label} | {connections} | {ratio:.1f}x |")
    one32 = table[("ours", "1 row", 32)]
    print(f"\nlimits: HTTP ceiling (constant /health, 32 conns) {http_ceiling:,.0f} req/s; compute floor "
          f"{floor['serving_path_ms']:.3f} ms per row (sklearn pipeline as is: {floor['sklearn_pipeline_ms']:.3f} ms); "
          f"combined limit {combined_limit:,.0f} req/s")
    print(f"startup to ready: ours {startup['ours']} s, mlflow {startup['mlflow']} s; "
          f"identical predictions: {identical}\n")
    targets = [
        ("1 row x32: >= 10x mlflow", ratios[("1 row", 32)] >= 10, f"{ratios[('1 row', 32)]:.1f}x"),
        ("1 row x32: >= 80% of the combined limit", one32["rps"] >= 0.8 * combined_limit,
         f"{one32['rps'] / combined_limit:.0%}"),
        ("1 row x32: p99 <= 3x p50", one32["p99_ms"] <= 3 * one32["p50_ms"],
         f"{one32['p99_ms']:.1f} / {one32['p50_ms']:.1f} ms"),
        ("100 rows x32: >= 5x mlflow", ratios[("100 rows", 32)] >= 5, f"{ratios[('100 rows', 32)]:.1f}x"),
        ("startup to ready < 5 s", startup["ours"] < 5, f"{startup['ours']} s"),
        ("zero errors", all(row["errors"] == 0 for row in table.values()), ""),
        ("identical predictions", identical, ""),
    ]
    for name, ok, seen in targets:
        print(f"{'PASS' if ok else 'FAIL'}  {name}  {seen}")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": {"node": platform.node(), "cores": os.cpu_count(), "python": platform.python_version()},
            "cells": [{"server": n, "payload": p, "connections": c, **row} for (n, p, c), row in table.items()],
            "http_ceiling_rps": http_ceiling, "compute_floor_ms": floor, "combined_limit_rps": combined_limit,
            "startup_s": startup, "identical": identical,
            "targets": [{"target": n, "pass": ok, "seen": s} for n, ok, s in targets],
        }, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(ok for _, ok, _ in targets) else 1


if __name__ == "__main__":
    sys.exit(main())

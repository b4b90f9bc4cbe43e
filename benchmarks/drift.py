"""Drift benchmark: the DuckDB drift engine against Evidently, and `gitops-ml data-check` end to end.

    .venv/bin/python benchmarks/drift.py                       # 1M vs 1M rows x 30 columns, all three
    .venv/bin/python benchmarks/drift.py --rows 10000000 --engines duckdb,data-check

1. writes a reference and a current CSV of `--rows` rows each: 25 numeric columns (ints and floats)
   and 5 categorical ones, the current data drifted in a few of them (in chunks: memory stays flat);
2. runs each engine in its own process and prints its wall time, its peak RSS (that process's
   `ru_maxrss`) and the per-column p-values' drift decisions:
   - `duckdb`: `gitops_ml.io.drift_engine.measure` over the two files (what data-check and drift use);
   - `evidently`: Evidently 0.7's DataDriftPreset with KS and chi-square, on both files read with pandas
     (what data-check did before; skipped above `--evidently-max-rows`, it needs ~4 GiB per 1M rows);
   - `data-check`: the whole `gitops-ml data-check --data current --reference reference` (data checks,
     the engine's drift decision and Evidently's HTML report on a sample);
3. prints whether the engines' decisions agree, column by column, and the targets (<= 20 s, <= 2 GiB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMERIC, CATEGORICAL = 25, 5
CATEGORIES = ["a", "b", "c", "d", "e", "f"]
DRIFTED = {"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "c0"}  # moved in the current data
TARGET_S, TARGET_GIB = 20.0, 2.0


def contract_yaml() -> str:
    columns = {}
    for i in range(NUMERIC):
        columns[f"n{i}"] = {"type": "int", "min": -1000000, "max": 1000000} if i % 3 == 0 else \
            {"type": "float", "min": -1e9, "max": 1e9}
    for i in range(CATEGORICAL):
        columns[f"c{i}"] = {"type": "category", "categories": CATEGORIES}
    columns["y"] = {"type": "int", "min": 0, "max": 1}
    import yaml

    return yaml.safe_dump({
        "model": {"task": "classification"},
        "data": {"train": "current.csv", "target": "y", "columns": columns, "min_rows": 1,
                 "max_duplicate_share": 1.0},
        "metrics": {"primary": "roc_auc"},
        "registry": {"model_name": "bench", "image": "bench"},
    }, sort_keys=False)


def write_data(path: Path, rows: int, seed: int, drift: bool, chunk: int = 250_000) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        data = {}
        for i in range(NUMERIC):
            name = f"n{i}"
            shift = 0.05 if drift and name in DRIFTED else 0.0
            values = rng.normal(shift, 1.0, n)
            data[name] = (values * 100).round().astype("int64") if i % 3 == 0 else values.round(4)
        for i in range(CATEGORICAL):
            name = f"c{i}"
            p = [0.3, 0.2, 0.2, 0.1, 0.1, 0.1] if not (drift and name in DRIFTED) else [0.28, 0.21, 0.2, 0.11, 0.1, 0.1]
            data[name] = rng.choice(CATEGORIES, n, p=p)
        data["y"] = rng.integers(0, 2, n)
        table = pa.table(data)
        if writer is None:
            writer = pacsv.CSVWriter(str(path), table.schema)
        writer.write_table(table)
    writer.close()


def run_child(argv: list[str]) -> dict:
    """Run one engine in its own process: its JSON result (with its own peak RSS) and wall time."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - start
    out_lines = stdout.strip().splitlines()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode}):\n{stderr[-3000:]}")
    result = json.loads(out_lines[-1]) if out_lines and out_lines[-1].startswith("{") else {}
    result["seconds"] = seconds
    return result


def child(args: argparse.Namespace) -> None:
    """One engine, in this process; prints one JSON line: decisions, and this process's peak RSS."""
    import resource

    sys.path.insert(0, str(ROOT / "actions"))
    from gitops_ml.core.contract import load_contract

    contract = load_contract(args.contract)
    features = contract.data.features
    numeric = [c for c in features if contract.data.columns[c].is_numeric]
    categorical = [c for c in features if c not in numeric]
    start = time.perf_counter()
    if args.child == "duckdb":
        from gitops_ml.core.drift import decide_tests
        from gitops_ml.io.drift_engine import Table, measure

        measured = measure(Table.file(Path(args.reference)), Table.file(Path(args.current)), numeric, categorical,
                           threshold=contract.drift.column_threshold)
        result = decide_tests(measured.tests, contract.drift.column_threshold, contract.drift.max_drifted_share)
    else:
        from gitops_ml.io.csv_input import read_strings
        from gitops_ml.io.evidently_drift import measure_drift

        result = measure_drift(read_strings(Path(args.reference)), read_strings(Path(args.current)), contract)
    inner = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"inner_seconds": inner, "peak_bytes": usage.ru_maxrss * 1024,
                      "cpu_seconds": usage.ru_utime + usage.ru_stime, "drifted": result.drifted,
                      "columns": {c.column: [c.score, c.drifted] for c in result.columns}}))


def data_check(args: argparse.Namespace, work: Path) -> dict:
    """`gitops-ml data-check` end to end, as its own process (peak RSS from wait4)."""
    argv = [str(Path(sys.executable).parent / "gitops-ml"), "data-check", "--contract", str(work / "gitops-ml.yaml"),
            "--data", str(work / "current.csv"), "--reference", str(work / "reference.csv"),
            "--out", str(work / "report")]
    start = time.perf_counter()
    log = work / "data-check.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT,
                                env={**os.environ, "GITHUB_STEP_SUMMARY": "", "GITHUB_OUTPUT": ""})
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"data-check failed ({code}):\n{log.read_text()[-3000:]}")
    result = json.loads((work / "report" / "result.json").read_text())
    drift = result["drift"] or {}
    return {"seconds": seconds, "peak_bytes": usage.ru_maxrss * 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "drifted": drift.get("drifted"),
            "columns": {c["column"]: [c["score"], c["drifted"]] for c in drift.get("columns", [])}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in each of reference and current")
    parser.add_argument("--engines", default="duckdb,evidently,data-check")
    parser.add_argument("--evidently-max-rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="folder for the data (reused when present)")
    parser.add_argument("--child", choices=["duckdb", "evidently"], help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("--current", help=argparse.SUPPRESS)
    parser.add_argument("--contract", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    with tempfile.TemporaryDirectory(prefix="gitops-ml-bench-drift-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / "gitops-ml.yaml").write_text(contract_yaml())
        reference, current = work / "reference.csv", work / "current.csv"
        stamp = work / f".rows-{args.rows}"
        if not stamp.exists():
            start = time.perf_counter()
            write_data(reference, args.rows, seed=1, drift=False)
            write_data(current, args.rows, seed=2, drift=True)
            stamp.touch()
            print(f"wrote {args.rows:,} + {args.rows:,} rows x {NUMERIC + CATEGORICAL} columns "
                  f"({(reference.stat().st_size + current.stat().st_size) / 2**20:.0f} MiB of CSV) in "
                  f"{time.perf_counter() - start:.1f} s")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start; "
              f"rows: {args.rows:,} reference, {args.rows:,} current; "
              f"{NUMERIC} numeric + {CATEGORICAL} categorical columns")
        results = {}
        for engine in args.engines.split(","):
            if engine == "evidently" and args.rows > args.evidently_max_rows:
                print(f"{engine:>11}: skipped above {args.evidently_max_rows:,} rows")
                continue
            if engine == "data-check":
                results[engine] = data_check(args, work)
            else:
                results[engine] = run_child([sys.executable, __file__, "--child", engine, "--reference",
                                             str(reference), "--current", str(current), "--contract",
                                             str(work / "gitops-ml.yaml")])
            r = results[engine]
            ok = r["seconds"] <= TARGET_S and r["peak_bytes"] <= TARGET_GIB * 2**30
            drifted = [c for c, (_, d) in r["columns"].items() if d]
            print(f"{engine:>11}: {r['seconds']:6.1f} s ({r['cpu_seconds']:.1f} s CPU), "
                  f"peak RSS {r['peak_bytes'] / 2**30:5.2f} GiB, "
                  f"dataset drifted: {r['drifted']}, {len(drifted)} drifted column(s): {', '.join(drifted)}"
                  + ("" if engine == "evidently" else f"  [target <= {TARGET_S:.0f} s, <= {TARGET_GIB:.0f} GiB: "
                                                        f"{'met' if ok else 'NOT met'}]"))
        names = list(results)
        for a_i, a in enumerate(names):
            for b in names[a_i + 1:]:
                ca, cb = results[a]["columns"], results[b]["columns"]
                differ = [c for c in ca if c in cb and ca[c][1] != cb[c][1]]
                worst = max((abs(ca[c][0] - cb[c][0]) for c in ca if c in cb and ca[c][0] is not None
                             and cb[c][0] is not None), default=0.0)
                same = not differ and results[a]["drifted"] == results[b]["drifted"]
                print(f"decisions {a} vs {b}: {'agree' if same else 'DIFFER: ' + ', '.join(differ)}"
                      f" ({len(ca)} columns; largest p-value difference {worst:.3g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

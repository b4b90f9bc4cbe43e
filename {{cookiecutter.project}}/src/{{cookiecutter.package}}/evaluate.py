"""The DVC `evaluate` stage: metrics of the saved model on the held-out split.

Writes `metrics.json` (DVC metrics, logged to MLflow by `gitops-ml train`), per-group metrics for
the sensitive attribute in `reports/evaluation.json`, and a plot in `reports/evaluation.png`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gitops_ml.core.contract import load_contract
from gitops_ml.core.dataset import read_typed
from gitops_ml.core.evaluation import evaluate
from gitops_ml.io.model_dir import load_model_dir
from gitops_ml.io.plots import evaluation_plot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package }}.evaluate")
    parser.add_argument("--contract", default="gitops-ml.yaml")
    parser.add_argument("--model", default="models/model")
    parser.add_argument("--data", default="data/split/test.csv")
    parser.add_argument("--metrics", default="metrics.json")
    parser.add_argument("--reports", default="reports")
    args = parser.parse_args(argv)
    try:
        contract = load_contract(args.contract)
        frame = read_typed(args.data, contract)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = load_model_dir(args.model).model
    result = evaluate(model, frame, contract, latency_rows=0)
    Path(args.metrics).write_text(json.dumps(result.metrics, indent=2) + "\n")
    reports = Path(args.reports)
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "evaluation.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    evaluation_plot(result, contract, reports / "evaluation.png")
    table = ", ".join(f"{name}={value:.4f}" for name, value in result.metrics.items())
    print(f"evaluated on {result.rows} held-out rows: {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

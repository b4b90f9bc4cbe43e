"""The DVC `train` stage: fit the pipeline on data/split/train.csv and save an MLflow model directory.

Registering the model in MLflow is `gitops-ml train`'s job (it runs `dvc repro`, then logs and
registers what this stage saved), so this stage stays a pure, reproducible function of its inputs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml
from gitops_ml.core.contract import load_contract
from gitops_ml.core.dataset import read_typed, target_array, to_matrix
from gitops_ml.io.model_dir import save_model_dir

from {{ cookiecutter.package }}.features import build_pipeline

MODEL_DIR = Path("models/model")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package }}.train")
    parser.add_argument("--contract", default="gitops-ml.yaml")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/split/train.csv")
    parser.add_argument("--out", default=str(MODEL_DIR))
    args = parser.parse_args(argv)
    try:
        contract = load_contract(args.contract)
        params = (yaml.safe_load(Path(args.params).read_text()) or {}).get("train", {})
        frame = read_typed(args.data, contract)
        pipeline = build_pipeline(contract, params)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    features = contract.data.features
    print(f"training {type(pipeline[-1]).__name__} on {len(frame)} rows x {len(features)} features")
    pipeline.fit(to_matrix(frame, features), target_array(frame, contract))
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    save_model_dir(pipeline, out, contract)
    print(f"saved model to {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

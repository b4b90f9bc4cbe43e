"""Data: load the training CSV under the contract, split it, and simulate new production data.

`python -m {{ cookiecutter.package }}.data split` is the DVC `split` stage;
`python -m {{ cookiecutter.package }}.data simulate --drift 0.6` writes "production" data with
controllable drift, drawn from this repository's own training data (so it works on any dataset),
for the demo, the tests and trying out the drift workflow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from gitops_ml.core.contract import Contract, load_contract
from gitops_ml.core.dataset import read_typed
from sklearn.model_selection import train_test_split

SPLIT_DIR = Path("data/split")


def split(contract: Contract, out_dir: Path = SPLIT_DIR) -> tuple[Path, Path]:
    frame = read_typed(contract.data.train, contract)
    stratify = frame[contract.data.target] if contract.model.task == "classification" else None
    train, test = train_test_split(
        frame, test_size=contract.data.test_size, random_state=contract.data.split_seed, stratify=stratify
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / "train.csv", out_dir / "test.csv"
    train.to_csv(paths[0], index=False)
    test.to_csv(paths[1], index=False)
    print(f"split {len(frame)} rows -> {len(train)} train, {len(test)} test in {out_dir}/")
    return paths


# --- simulated production data, with controllable drift, from this repository's own data ---------


def simulate_for(contract: Contract, rows: int, seed: int, drift: float, source: pd.DataFrame | None = None
                 ) -> pd.DataFrame:
    """`rows` rows like the training data (data.train, or `source`), with drift `drift` in [0, 1].

    Rows are drawn from the data (without replacement while there are enough, so no duplicates are
    made up); then every numeric feature moves up by `drift` standard deviations (kept inside the
    contract's min/max, whole numbers stay whole) and each categorical feature's value becomes its
    column's first declared category with probability drift / 2. Driven by the contract alone: it
    works for any dataset this repository is given. Exactly the contract's columns, in its order.
    """
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if not 0.0 <= drift <= 1.0:
        raise ValueError(f"drift must be between 0 and 1, got {drift}")
    frame = read_typed(contract.data.train, contract) if source is None else source
    if frame.empty:
        raise ValueError(f"{contract.data.train} has no rows to simulate from")
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(frame), size=rows, replace=rows > len(frame))
    out = frame.iloc[picks].reset_index(drop=True).copy()
    for name in contract.data.features:
        column = contract.data.columns[name]
        if column.is_numeric:
            values = out[name].astype("float64")
            shifted = values + drift * (values.std() if len(values) > 1 and values.std() > 0 else 1.0)
            shifted = shifted.clip(lower=column.min, upper=column.max)
            out[name] = shifted.round().astype("Int64") if column.type == "int" else shifted
        elif column.type == "category" and drift > 0:
            moved = (rng.random(rows) < drift / 2) & out[name].notna().to_numpy()
            out.loc[moved, name] = column.categories[0]
    return out[list(contract.data.columns)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package }}.data")
    parser.add_argument("--contract", default="gitops-ml.yaml")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("split", help="split the training data into data/split/{train,test}.csv")
    sim = commands.add_parser("simulate", help="write simulated production data")
    sim.add_argument("--rows", type=int, default=None,
                     help="rows to write (default: as many as the training data has, at most 2000; more repeat rows)")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--drift", type=float, default=0.0, help="0 (none) to 1 (strong)")
    sim.add_argument("--out", default=None, help="CSV to write (default: data.current in the contract)")
    args = parser.parse_args(argv)
    try:
        contract = load_contract(args.contract)
        if args.command == "split":
            split(contract)
        else:
            out = Path(args.out or contract.data.current)
            out.parent.mkdir(parents=True, exist_ok=True)
            source = read_typed(contract.data.train, contract)
            rows = args.rows or min(len(source), 2000)
            simulate_for(contract, rows, args.seed, args.drift, source).to_csv(out, index=False)
            print(f"wrote {rows} simulated rows (drift {args.drift}) to {out}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Data: load the training CSV under the contract, split it, and simulate new production data.

`python -m {{ cookiecutter.package }}.data split` is the DVC `split` stage;
`python -m {{ cookiecutter.package }}.data simulate --drift 0.6` writes "production" data with
controllable drift, for the demo, the tests and trying out the drift workflow.
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


# --- simulated data: the bundled sample and "production" data with controllable drift ------------

CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENTS = ("card", "bank-transfer", "electronic-check")
REGIONS = ("north", "south", "east", "west")
GENDERS = ("female", "male")


def simulate(rows: int, seed: int = 0, drift: float = 0.0) -> pd.DataFrame:
    """Synthetic customers with both targets (`churned` and `annual_spend`). Licence-clean by construction.

    `drift` in [0, 1] moves the feature distributions (older customers, higher charges, more
    month-to-month contracts, more support calls) and weakens tenure's effect on churn (concept drift).
    """
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if not 0.0 <= drift <= 1.0:
        raise ValueError(f"drift must be between 0 and 1, got {drift}")
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(44 + 14 * drift, 13, rows), 18, 90).round().astype(int)
    tenure = np.clip(rng.exponential(26 * (1 - 0.5 * drift), rows), 0, 72).round().astype(int)
    contract = rng.choice(CONTRACTS, rows, p=[0.45 + 0.35 * drift, 0.3 - 0.15 * drift, 0.25 - 0.2 * drift])
    payment = rng.choice(PAYMENTS, rows, p=[0.4, 0.3, 0.3])
    region = rng.choice(REGIONS, rows, p=[0.3, 0.25, 0.25, 0.2])
    gender = rng.choice(GENDERS, rows)
    charges = np.clip(rng.normal(65 + 30 * drift, 24, rows), 18, 150).round(2)
    calls = rng.poisson(1.5 + 2.5 * drift, rows)

    month_to_month = contract == "month-to-month"
    logit = (
        -1.3
        + 1.1 * month_to_month
        - (0.05 - 0.03 * drift) * tenure
        + 0.015 * (charges - 65)
        + 0.35 * calls
        - 0.012 * (age - 44)
        + 0.6 * (payment == "electronic-check")
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    loyalty = np.where(month_to_month, 0.7, np.where(contract == "one-year", 0.9, 1.0))
    spend = 12 * charges * loyalty + 6 * tenure - 25 * calls + 3 * (age - 44) + rng.normal(0, 60, rows)

    frame = pd.DataFrame(
        {
            "age": age,
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "contract": contract,
            "payment_method": payment,
            "region": region,
            "gender": gender,
            "churned": churned,
            "annual_spend": np.maximum(spend, 0).round(2),
        }
    )
    # Real data has gaps: about 1% of charges are unknown.
    frame.loc[rng.random(rows) < 0.01, "monthly_charges"] = np.nan
    return frame


def simulate_for(contract: Contract, rows: int, seed: int, drift: float) -> pd.DataFrame:
    """Simulated data with exactly the contract's columns (the other task's target dropped)."""
    frame = simulate(rows, seed=seed, drift=drift)
    return frame[[name for name in contract.data.columns if name in frame.columns]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package }}.data")
    parser.add_argument("--contract", default="gitops-ml.yaml")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("split", help="split the training data into data/split/{train,test}.csv")
    sim = commands.add_parser("simulate", help="write simulated production data")
    sim.add_argument("--rows", type=int, default=2000)
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
            simulate_for(contract, args.rows, args.seed, args.drift).to_csv(out, index=False)
            print(f"wrote {args.rows} simulated rows (drift {args.drift}) to {out}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

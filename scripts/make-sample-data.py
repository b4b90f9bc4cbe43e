"""The template's bundled sample datasets: synthetic customers, licence-clean by construction.

    .venv/bin/python scripts/make-sample-data.py

writes data/raw/customers-{classification,regression}.csv of the template (one column set, each task
keeps its own target). The tests load `simulate` from here by path for drifted "production" data
of the sample; generated repositories simulate from their own contract and data instead.
"""

from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "{{cookiecutter.project}}"
ROWS, SEED = 4000, 42
DROP = {"classification": "annual_spend", "regression": "churned"}

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


def sample(task: str) -> pd.DataFrame:
    return simulate(ROWS, seed=SEED).drop(columns=[DROP[task]])


def main() -> None:
    for task in DROP:
        out = TEMPLATE / "data" / "raw" / f"customers-{task}.csv"
        sample(task).to_csv(out, index=False)
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

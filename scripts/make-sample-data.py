"""Regenerate the template's bundled sample datasets from the generated repo's own simulator.

    .venv/bin/python scripts/make-sample-data.py

tests/test_sample_data.py checks that the committed CSVs are exactly what this produces.
"""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "{{cookiecutter.project}}"
ROWS, SEED = 4000, 42
DROP = {"classification": "annual_spend", "regression": "churned"}


def simulator():
    path = TEMPLATE / "src" / "{{cookiecutter.package}}" / "data.py"
    spec = importlib.util.spec_from_file_location("template_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.simulate


def sample(task: str):
    return simulator()(ROWS, seed=SEED).drop(columns=[DROP[task]])


def main() -> None:
    for task in DROP:
        out = TEMPLATE / "data" / "raw" / f"customers-{task}.csv"
        sample(task).to_csv(out, index=False)
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""The template's own files used as test inputs: its contract rendered for a task, its sample data, its simulator."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jinja2
import pandas as pd
import yaml
from gitops_ml.core.contract import Contract, parse_contract

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "{{cookiecutter.project}}"
ANSWERS = {"project": "churn-model", "description": "Predicts churn.", "container_registry": "ghcr.io/acme",
           "deploy_target": "docker"}


HOLDOUT_PIN = "HOLDOUT_SHA256_PINNED_BY_THE_HOOK"  # the post-gen hook writes the holdout's hash here


def contract_text(task: str = "classification") -> str:
    """The template's gitops-ml.yaml as cookiecutter renders it for `task` (a stand-in holdout hash)."""
    source = (TEMPLATE / "gitops-ml.yaml").read_text(encoding="utf-8")
    environment = jinja2.Environment()
    environment.filters["actions_sha"] = lambda answers: "0" * 40  # local_extensions' filter, for a comment here
    rendered = environment.from_string(source).render(cookiecutter={**ANSWERS, "actions_repo": "acme/gitops-ml",
                                                                    "task": task})
    return rendered.replace(HOLDOUT_PIN, "0" * 64)


def contract(task: str = "classification") -> Contract:
    return parse_contract(yaml.safe_load(contract_text(task)))


def sample_csv(task: str = "classification") -> Path:
    return TEMPLATE / "data" / "raw" / f"customers-{task}.csv"


def simulate(rows: int, seed: int, drift: float, task: str = "classification") -> pd.DataFrame:
    """The sample's simulator (scripts/make-sample-data.py, loaded by path): customers with controllable drift."""
    path = ROOT / "scripts" / "make-sample-data.py"
    spec = importlib.util.spec_from_file_location("template_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    other_target = {"classification": "annual_spend", "regression": "churned"}[task]
    return module.simulate(rows, seed=seed, drift=drift).drop(columns=[other_target])

"""`gitops-ml contract schema` and `gitops-ml contract infer`, through the CLI as people call them."""

from __future__ import annotations

import json
import shutil

import yaml
from gitops_ml.cli import main
from gitops_ml.core.contract import load_contract

from tests import template_files
from tests.conftest import ROOT


def test_schema_prints_the_published_schema(capsys):
    assert main(["contract", "schema"]) == 0
    printed = capsys.readouterr().out
    assert printed == (ROOT / "schema" / "gitops-ml.schema.json").read_text() and json.loads(printed)["$defs"]


def repo(tmp_path):
    (tmp_path / "gitops-ml.yaml").write_text(template_files.contract_text("regression"))
    (tmp_path / "data" / "raw").mkdir(parents=True)
    shutil.copy(template_files.sample_csv("classification"), tmp_path / "data" / "raw" / "mine.csv")
    return tmp_path


def test_infer_prints_sections_for_review_without_touching_the_contract(tmp_path, capsys):
    root = repo(tmp_path)
    before = (root / "gitops-ml.yaml").read_text()
    code = main(["contract", "infer", "--contract", str(root / "gitops-ml.yaml"), "--data", "data/raw/mine.csv",
                 "--target", "churned"])
    out = capsys.readouterr().out
    assert code == 0 and (root / "gitops-ml.yaml").read_text() == before
    sections = yaml.safe_load(out)
    assert sections["data"]["train"] == "data/raw/mine.csv" and sections["metrics"]["primary"] == "roc_auc"
    assert "# sensitive_attribute: gender" in out


def test_infer_write_switches_the_task_and_keeps_the_rest(tmp_path):
    root = repo(tmp_path)
    code = main(["contract", "infer", "--contract", str(root / "gitops-ml.yaml"), "--data", "data/raw/mine.csv",
                 "--target", "churned", "--sensitive-attribute", "gender", "--write"])
    assert code == 0
    contract = load_contract(root / "gitops-ml.yaml")
    assert contract.model.task == "classification" and contract.data.target == "churned"
    assert contract.promotion.fairness.metric == "accuracy" and contract.registry.model_name == "churn-model"
    assert contract.deploy.environments  # untouched sections survive


def test_infer_errors_exit_2_and_leave_the_contract_alone(tmp_path, capsys):
    root = repo(tmp_path)
    before = (root / "gitops-ml.yaml").read_text()
    for args in (["--target", "nope"], ["--target", "region", "--task", "regression"]):
        code = main(["contract", "infer", "--contract", str(root / "gitops-ml.yaml"), "--data",
                     "data/raw/mine.csv", "--write", *args])
        assert code == 2
    (root / "data" / "raw" / "semi.csv").write_text("a;b\n1;2\n")
    assert main(["contract", "infer", "--contract", str(root / "gitops-ml.yaml"), "--data", "data/raw/semi.csv",
                 "--target", "a"]) == 2
    err = capsys.readouterr().err
    assert "is not a column" in err and "not numeric" in err and "semicolons" in err
    assert (root / "gitops-ml.yaml").read_text() == before

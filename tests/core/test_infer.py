"""`contract infer`'s pure part: a starting contract from data the template has never seen."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from gitops_ml.core.checks import overall
from gitops_ml.core.contract import parse_contract
from gitops_ml.core.infer import InferError, infer, render_data, render_policy, replace_sections

from tests import template_files


def strings(frame: pd.DataFrame) -> pd.DataFrame:
    """As data-check and infer read a CSV: every value text, missing as NaN."""
    return frame.astype(object).map(lambda v: np.nan if pd.isna(v) else str(v))


def mixed(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "height": rng.normal(170, 10, rows).round(1),
        "visits": rng.poisson(3, rows),
        "sex": rng.choice(["f", "m"], rows),
        "plan": rng.choice(["basic", "pro", "team"], rows),
        "note": [f"free text {i}" for i in range(rows)],
        "label": rng.choice(["cat", "dog", "owl"], rows),
    })
    frame.loc[rng.random(rows) < 0.1, "height"] = np.nan
    return strings(frame)


def contract_of(inferred, frame_rows: int | None = None):
    document = yaml.safe_load(render_data(inferred, "test") + render_policy(inferred))
    return parse_contract({"model": {"task": inferred.task}, **document,
                           "registry": {"model_name": "m", "image": "i"}})


def test_types_ranges_categories_nullability_and_the_suggested_sensitive_attribute():
    inferred = infer(mixed(), "label", "data/raw/mine.csv")
    columns = inferred.data["columns"]
    assert inferred.task == "classification" and columns["label"] == {"type": "category",
                                                                       "categories": ["cat", "dog", "owl"]}
    assert columns["visits"]["type"] == "int" and columns["visits"]["min"] == 0
    height = columns["height"]
    assert height["type"] == "float" and height["nullable"] and height["max_missing_share"] >= 0.1
    assert height["min"] < 140 and height["max"] > 200  # headroom around what was seen
    assert columns["plan"]["categories"] == ["basic", "pro", "team"]
    assert "note" not in columns and "an id or free text" in inferred.skipped["note"]
    assert inferred.suggested_sensitive == "sex" and "sensitive_attribute" not in inferred.data
    text = render_data(inferred, "gitops-ml contract infer")
    assert "  # sensitive_attribute: sex" in text and "# note: not declared" in text
    assert inferred.metrics["primary"] == "f1"  # multiclass: macro f1


def test_the_inferred_contract_validates_and_its_data_passes_data_check(tmp_path):
    from gitops_ml.io.csv_input import check_file

    frame = mixed()
    inferred = infer(frame, "label", "mine.csv", sensitive_attribute="sex")
    contract = contract_of(inferred)
    assert contract.data.sensitive_attribute == "sex" and contract.promotion.fairness.metric == "accuracy"
    path = tmp_path / "mine.csv"
    frame.to_csv(path, index=False)
    _, results = check_file(path, contract)
    assert overall(results) == "warn"  # only the undeclared free-text column
    assert [r.column for r in results if r.status != "pass"] == ["note"]


def test_regression_is_inferred_from_a_numeric_target_with_defaults_in_its_unit():
    frame = template_files.simulate(600, seed=1, drift=0.0, task="regression")
    inferred = infer(strings(frame), "annual_spend", "d.csv")
    assert inferred.task == "regression" and inferred.metrics["primary"] == "rmse"
    assert inferred.promotion["floors"] == {"r2": 0.0}
    spread = frame["annual_spend"].std()
    assert 0.02 * spread < inferred.promotion["guards"]["mae"]["max_drop"] < 0.1 * spread
    contract_of(inferred)


def test_a_binary_target_gets_a_majority_class_floor():
    frame = template_files.simulate(800, seed=2, drift=0.0)
    inferred = infer(strings(frame), "churned", "d.csv")
    share = frame["churned"].value_counts(normalize=True).max()
    assert inferred.task == "classification" and inferred.data["columns"]["churned"] == {"type": "int"}
    assert inferred.promotion["floors"]["accuracy"] == pytest.approx(share + 0.005, abs=0.001)
    assert inferred.metrics["primary"] == "roc_auc"


@pytest.mark.parametrize(("target", "kwargs", "fragment"), [
    ("nope", {}, "is not a column"),
    ("label", {"task": "regression"}, "not numeric"),
    ("label", {"sensitive_attribute": "height"}, "must be a text \\(category\\) column"),
])
def test_what_cannot_be_inferred_is_named(target, kwargs, fragment):
    with pytest.raises(InferError, match=fragment):
        infer(mixed(), target, "d.csv", **kwargs)


def test_replacing_sections_keeps_every_other_line():
    text = template_files.contract_text("classification")
    inferred = infer(mixed(), "label", "data/raw/mine.csv")
    sections = {"data": render_data(inferred, "x"), "metrics": render_policy(inferred).split("promotion:")[0],
                "promotion": "promotion:" + render_policy(inferred).split("promotion:")[1]}
    new = replace_sections(text, sections, "classification")
    assert new.splitlines()[0].startswith("# yaml-language-server: $schema=")
    for kept in ("registry:", "deploy:", "drift:", "  intended_use:", "# Every key is validated"):
        assert kept in new
    contract = parse_contract(yaml.safe_load(new))
    assert contract.data.train == "data/raw/mine.csv" and contract.metrics.primary == "f1"
    assert replace_sections(new, sections, "classification") == new  # idempotent

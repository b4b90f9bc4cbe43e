"""The contract model: strict (no silent coercion beyond the documented, lossless ones), errors that
name the key and point to the key reference, and the published JSON Schema kept in sync."""

from __future__ import annotations

import copy
import datetime
import json

import pytest
import yaml
from gitops_ml.core.contract import ContractError, json_schema, json_schema_text, parse_contract

from tests import template_files
from tests.conftest import ROOT

RAW = yaml.safe_load(template_files.contract_text("classification"))


def with_(path: str, value):
    raw = copy.deepcopy(RAW)
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    node[last] = value
    return raw


@pytest.mark.parametrize(("path", "value", "fragment"), [
    ("data.min_rows", "100", "data.min_rows: Input should be a valid integer (got '100')"),
    ("data.columns.monthly_charges.nullable", "yes", "nullable: Input should be a valid boolean (got 'yes')"),
    ("promotion.floors.roc_auc", "0.7", "promotion.floors.roc_auc: Input should be a valid number"),
    ("deploy.port", 80.5, "deploy.port: Input should be a valid integer"),
    ("data.columns.gender.categories", [True, "x"], "quote it as the data writes it"),
    ("data.columns.gender.categories", [0.5, "x"], "number with a fraction"),
    ("model.intended_use", 12, "model.intended_use: Input should be a valid string"),
])
def test_strings_are_not_numbers_or_booleans(path, value, fragment):
    with pytest.raises(ContractError) as error:
        parse_contract(with_(path, value))
    assert fragment in str(error.value)


def test_the_documented_lossless_conversions():
    contract = parse_contract(with_("data.columns.gender.categories", [0, 1]))
    assert contract.data.columns["gender"].categories == ("0", "1")  # as the CSV cell reads
    assert parse_contract(with_("data.columns.age.min", 18)).data.columns["age"].min == 18.0
    numbered = copy.deepcopy(RAW)
    numbered["data"]["columns"][2024] = {"type": "float"}
    assert "2024" in parse_contract(numbered).data.columns


def test_a_yaml_date_is_named_and_refused():
    with pytest.raises(ContractError, match="unquoted dates"):
        parse_contract(with_("model.intended_use", datetime.date(2026, 1, 1)))


def test_errors_point_to_the_key_reference():
    with pytest.raises(ContractError) as error:
        parse_contract(with_("data.min_rows", "100"))
    assert "docs/contract.md" in str(error.value) and "gitops-ml contract schema" in str(error.value)
    assert (ROOT / "docs" / "contract.md").read_text().count("`min_rows`") == 1  # the reference has the key


def test_the_published_schema_is_up_to_date():
    published = ROOT / "schema" / "gitops-ml.schema.json"
    assert published.read_text(encoding="utf-8") == json_schema_text(), "run `make schema` and commit the result"


def test_the_schema_validates_the_template_contract_and_refuses_what_the_model_refuses():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    for task in ("classification", "regression"):
        validator.validate(yaml.safe_load(template_files.contract_text(task)))
    assert list(validator.iter_errors(with_("data.min_rows", "100")))
    assert list(validator.iter_errors(with_("data.typo", 1)))
    assert json.loads(json_schema_text())["title"] == "gitops-ml.yaml"


def test_the_generated_contract_points_editors_to_the_schema():
    first = template_files.contract_text("classification").splitlines()[0]
    assert first == ("# yaml-language-server: $schema=https://raw.githubusercontent.com/acme/gitops-ml/"
                     + "0" * 40 + "/schema/gitops-ml.schema.json")

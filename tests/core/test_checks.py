"""The data checks against the template's own contract and sample data, clean and corrupted one way at a time.

Each corrupted file must fail exactly the check(s) it breaks, with a message that names the
column and the rule; the clean sample must pass.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gitops_ml.core.checks import overall
from gitops_ml.io.csv_input import DataFileError, check_file, read_strings

from tests import template_files

CONTRACT = template_files.contract("classification")


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return read_strings(template_files.sample_csv("classification"))


def failures(results) -> set[tuple[str, str | None]]:
    return {(result.name, result.column) for result in results if result.status == "fail"}


def failing(results, name: str):
    [result] = [result for result in results if result.status == "fail" and result.name == name]
    return result


def test_the_clean_sample_passes_every_check():
    frame, results = check_file(template_files.sample_csv("classification"), CONTRACT)
    assert frame is not None and len(frame) == 4000
    assert overall(results) == "pass", [r.message for r in results if r.status != "pass"]
    names = {result.name for result in results}
    assert {"header", "required_columns", "min_rows", "type", "missing", "range", "categories", "duplicates",
            "target"} <= names


def _set(frame: pd.DataFrame, rows: list[int], column: str, value: object) -> pd.DataFrame:
    frame.loc[rows, column] = value
    return frame


# (id, how to corrupt the sample, the (check, column) pairs that must fail, fragments the message must hold)
CORRUPTIONS: list[tuple[str, Callable[[pd.DataFrame], pd.DataFrame], set, list[str]]] = [
    ("missing column", lambda f: f.drop(columns=["tenure_months"]),
     {("required_columns", "tenure_months")}, ["column 'tenure_months'", "missing from the file"]),
    ("text in an int column", lambda f: _set(f, [10], "age", "forty"),
     {("type", "age")}, ["column 'age'", "'forty' on line 12", "not a finite number", "type 'int'"]),
    ("fraction in an int column", lambda f: _set(f, [3], "support_calls", "2.5"),
     {("type", "support_calls")}, ["column 'support_calls'", "'2.5' on line 5", "not a whole number"]),
    ("text in a float column", lambda f: _set(f, [7], "monthly_charges", "n/a?"),
     {("type", "monthly_charges")}, ["column 'monthly_charges'", "'n/a?' on line 9", "type 'float'"]),
    ("missing values over the column's limit", lambda f: _set(f, list(range(0, 4000, 10)), "monthly_charges", np.nan),
     {("missing", "monthly_charges")},
     ["column 'monthly_charges'", "over the limit 5.0%", "data.columns.monthly_charges.max_missing_share"]),
    ("missing values in a non-nullable column", lambda f: _set(f, [5, 6], "region", np.nan),
     {("missing", "region")}, ["column 'region'", "2 missing value(s), first on line 7", "not nullable"]),
    ("values out of range", lambda f: _set(_set(f, [1], "age", "5"), [2, 3], "age", "240"),
     {("range", "age")},
     ["column 'age'", "3 value(s) outside [18, 110]", "seen min 5, max 240", "data.columns.age.min/max"]),
    ("unknown category", lambda f: _set(f, [0, 1, 2], "region", "mars"),
     {("categories", "region")}, ["column 'region'", "'mars' (3)", "data.columns.region.categories"]),
    ("duplicated rows", lambda f: pd.concat([f, f.head(100)], ignore_index=True),
     {("duplicates", None)}, ["100 duplicated row(s)", "data.max_duplicate_share"]),
    ("too few rows", lambda f: f.head(100),
     {("min_rows", None)}, ["only 100 row(s)", "data.min_rows"]),
    ("missing target column", lambda f: f.drop(columns=["churned"]),
     {("target", "churned")}, ["column 'churned'", "target (data.target) is missing"]),
    ("missing target values", lambda f: _set(f, [42], "churned", np.nan),
     {("target", "churned")}, ["column 'churned'", "1 missing value(s), first on line 44"]),
    ("a single class", lambda f: f.assign(churned="0"),
     {("target", "churned")}, ["column 'churned'", "only 1 class(es)", "at least 2"]),
    ("header only", lambda f: f.head(0),
     {("not_empty", None)}, ["header but no data rows"]),
]


@pytest.mark.parametrize(("corrupt", "expected", "fragments"), [case[1:] for case in CORRUPTIONS],
                         ids=[case[0] for case in CORRUPTIONS])
def test_each_corruption_fails_its_own_check_with_a_specific_message(sample, tmp_path, corrupt, expected, fragments):
    path = tmp_path / "data.csv"
    corrupt(sample.copy()).to_csv(path, index=False)
    _, results = check_file(path, CONTRACT)
    assert overall(results) == "fail"
    assert failures(results) == expected
    [result] = [r for r in results if (r.name, r.column) in expected]
    for fragment in fragments:
        assert fragment in result.message


def test_an_extra_column_is_a_warning_not_a_failure(sample, tmp_path):
    path = tmp_path / "data.csv"
    sample.assign(customer_id=[str(i) for i in range(len(sample))]).to_csv(path, index=False)
    _, results = check_file(path, CONTRACT)
    assert overall(results) == "warn"
    [warning] = [r for r in results if r.status == "warn"]
    assert warning.column == "customer_id" and "not declared in data.columns" in warning.message


def test_a_file_without_a_header_row_says_so(sample, tmp_path):
    path = tmp_path / "data.csv"
    sample.to_csv(path, index=False, header=False)
    _, results = check_file(path, CONTRACT)
    assert failures(results) == {("header", None)}
    assert "no header row" in failing(results, "header").message


def _random_bytes(size: int) -> bytes:
    return random.Random(0).randbytes(size)


# (id, file content, what the message must say)
NOT_CSV = [
    ("empty file", b"", "the file is empty"),
    ("blank lines", b"\n\n  \n", "the file is empty"),
    ("PNG image", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _random_bytes(200), "a PNG image, not CSV"),
    ("xlsx workbook", b"PK\x03\x04" + _random_bytes(200), "ZIP archive (an .xlsx workbook is one)"),
    ("random bytes", _random_bytes(4096), "binary data"),
    ("latin-1 text", "age,region\n30,S\xe9te\n".encode("latin-1"), "not UTF-8 text"),
    ("latin-1 after UTF-8 text", b"age,region\n30,S\xc3\xa8te\n\n31,S\xe9te\n", "byte 25 on line 4"),
    ("semicolon-delimited", b"age;region\n30;north\n", "separate values with semicolons"),
    ("tab-delimited", b"age\tregion\n30\tnorth\n", "separate values with tabs"),
    ("ragged rows", b"age,region\n30,north\n31,south,extra,fields\n", "not well-formed CSV"),
]


@pytest.mark.parametrize(("content", "fragment"), [case[1:] for case in NOT_CSV], ids=[case[0] for case in NOT_CSV])
def test_a_file_that_is_not_csv_is_one_failed_check_not_a_traceback(tmp_path, content, fragment):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    frame, results = check_file(path, CONTRACT)
    assert frame is None
    [result] = results
    assert (result.name, result.status) == ("readable", "fail")
    assert fragment in result.message and str(path) in result.message


@pytest.mark.parametrize("make", [lambda tmp: tmp / "absent.csv", lambda tmp: tmp], ids=["no such file", "a folder"])
def test_a_path_that_is_not_a_file_is_a_user_error(tmp_path, make):
    with pytest.raises(DataFileError, match="pass --data"):
        check_file(make(tmp_path), CONTRACT)


def test_the_regression_sample_passes_its_own_contract():
    _, results = check_file(template_files.sample_csv("regression"), template_files.contract("regression"))
    assert overall(results) == "pass"


def test_boolean_columns_accept_what_pandas_reads_as_boolean(tmp_path):
    from gitops_ml.core.contract import parse_contract

    contract = parse_contract({
        "model": {"task": "classification"},
        "data": {"train": "t.csv", "target": "y", "min_rows": 1,
                 "columns": {"flag": {"type": "bool"}, "y": {"type": "int"}}},
        "metrics": {"primary": "accuracy"},
        "registry": {"model_name": "m", "image": "i"},
    })
    path = tmp_path / "data.csv"
    path.write_text("flag,y\ntrue,0\nFALSE,1\n1,0\n0,1\nmaybe,0\nTrue,1\nFalse,0\nTRUE,0\n")
    _, results = check_file(path, contract)
    assert failures(results) == {("type", "flag")}
    assert "'maybe' on line 6 is not a boolean" in failing(results, "type").message


def test_results_are_deterministic(tmp_path: Path):
    first = check_file(template_files.sample_csv(), CONTRACT)[1]
    second = check_file(template_files.sample_csv(), CONTRACT)[1]
    assert first == second


def test_line_numbers_count_blank_lines_and_multi_line_values(sample, tmp_path):
    """Defect 7: a blank line and a quoted two-line value before the bad row shift its line by 2."""
    path = tmp_path / "data.csv"
    frame = sample.head(600).copy()
    frame.loc[10, "age"] = "forty"
    rows = frame.to_csv(index=False).splitlines(keepends=True)
    rows[2] += "\n  \n"  # a blank and a whitespace-only line after line 3
    path.write_text("".join(rows))
    _, results = check_file(path, CONTRACT)
    assert "'forty' on line 14" in failing(results, "type").message  # row 10 is line 12, +2 for the blank lines


def test_a_duplicated_header_name_is_reported_as_a_duplicate(sample, tmp_path):
    path = tmp_path / "data.csv"
    text = sample.to_csv(index=False).replace("tenure_months", "age", 1)
    path.write_text(text)
    frame, results = check_file(path, CONTRACT)
    [result] = results
    assert frame is None and (result.name, result.status) == ("header", "fail")
    assert "'age' at positions 1, 2" in result.message and "missing" not in result.message


def test_a_bom_is_not_part_of_the_first_column_name(sample, tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"\xef\xbb\xbf" + sample.to_csv(index=False).encode())
    assert overall(check_file(path, CONTRACT)[1]) == "pass"


def four_classes():
    from gitops_ml.core.contract import parse_contract

    return parse_contract({
        "model": {"task": "classification"},
        "data": {"train": "t.csv", "target": "y", "min_rows": 1, "test_size": 0.2,
                 "columns": {"x": {"type": "float"}, "y": {"type": "category", "categories": list("abcd")}}},
        "metrics": {"primary": "accuracy"},
        "registry": {"model_name": "m", "image": "i"},
    })


def test_a_class_with_a_single_row_fails_before_the_split_would(tmp_path):
    """Defect 4: scikit-learn's stratified split refuses it later, naming no column."""
    path = tmp_path / "data.csv"
    path.write_text("x,y\n" + "".join(f"{i},{'abc'[i % 3]}\n" for i in range(60)) + "\n61,d\n")
    _, results = check_file(path, four_classes())
    target = failing(results, "target")
    for fragment in ["column 'y'", "'d' (1 row)", "first on line 63", "at least 2 rows of every class",
                     "merge it into another class"]:
        assert fragment in target.message


def test_classes_must_fill_both_sides_of_the_split(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x,y\n" + "".join(f"{i},{'abcd'[i % 4]}\n" for i in range(8)))
    _, results = check_file(path, four_classes())
    target = failing(results, "target")
    assert "4 classes" in target.message and "2 test and 6 training rows" in target.message
    assert "data.test_size" in target.message

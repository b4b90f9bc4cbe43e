"""Data checks: does a dataset honour the contract's schema, before anything trains on it?

Pure functions over a DataFrame read entirely as strings (see `gitops_ml.io.csv_input`), so a
wrong type is still visible as the text that was in the file. Every failing result names the
column, the rule, what was seen, what was expected and what to do; line numbers count the header
as line 1, as both an editor and a spreadsheet show them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from gitops_ml.core.contract import CONTRACT_FILE, Column, Contract

Status = Literal["pass", "warn", "fail"]
BOOL_VALUES = frozenset({"true", "false", "1", "0"})  # what pandas' nullable boolean dtype accepts
SHOWN = 5  # how many offending values or names a message lists


@dataclass(frozen=True)
class CheckResult:
    name: str
    column: str | None
    status: Status
    seen: str
    expected: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def overall(results: Iterable[CheckResult]) -> Status:
    statuses = {result.status for result in results}
    return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"


def file_problem(source: str, problem: str) -> CheckResult:
    """The one result for a file that could not be read as CSV at all."""
    return CheckResult("readable", None, "fail", problem, "a UTF-8 CSV file with a header row",
                       f"{source}: {problem}; export the data as a UTF-8 CSV file with a header row")


def duplicate_header(source: str, duplicated: dict[str, list[int]]) -> CheckResult:
    """The one result for a header naming a column more than once (which column would the model read?)."""
    listed = "; ".join(f"'{name}' at positions {', '.join(map(str, where))}" for name, where in duplicated.items())
    return CheckResult("header", None, "fail", f"duplicated: {listed}", "each column named once",
                       f"{source}: the header names a column more than once ({listed}); rename or drop the "
                       f"duplicates so each column appears once")


def check_data(frame: pd.DataFrame, contract: Contract, lines: Sequence[int] | None = None) -> list[CheckResult]:
    """Every check of `frame` (all values strings or missing) against the contract, in a stable order.

    `lines` are the file lines of the rows (blank lines make them differ from the row number);
    without them, row i is taken to be on line i + 2.
    """
    frame = frame.set_axis(list(lines) if lines is not None else range(2, len(frame) + 2), axis=0)
    data = contract.data
    declared = list(data.columns)
    if not set(declared) & set(frame.columns):
        return [_no_header(frame, declared)]
    results = [CheckResult("header", None, "pass", f"{len(frame.columns)} column(s)", "column names", "header found")]
    results += _required_columns(frame, contract)
    results += _extra_columns(frame, declared)
    if frame.empty:
        results.append(CheckResult("not_empty", None, "fail", "0 rows", f"at least {data.min_rows} rows",
                                   "the file has a header but no data rows; add data"))
        return results
    results.append(_min_rows(len(frame), data.min_rows))
    for name, column in data.columns.items():
        if name in frame.columns:
            results += _column_checks(frame[name], name, column, contract)
    results.append(_duplicates(frame, data.max_duplicate_share))
    results += _target(frame, contract)
    return results


def _line(index: object) -> int:
    return int(index)  # check_data indexes rows by their line in the file


def _fmt(value: float) -> str:
    return f"{value:g}"


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def _listed(values: Iterable[object]) -> str:
    values = list(values)
    shown = ", ".join(repr(str(value)) for value in values[:SHOWN])
    return shown + (f" and {len(values) - SHOWN} more" if len(values) > SHOWN else "")


def _no_header(frame: pd.DataFrame, declared: list[str]) -> CheckResult:
    first = ", ".join(str(name) for name in list(frame.columns)[:SHOWN])
    return CheckResult(
        "header", None, "fail", f"first line: {first}", f"column names such as {', '.join(declared[:SHOWN])}",
        f"none of the contract's columns appear in the first line ({first}): the file has no header row or "
        f"belongs to another dataset; add a header row naming the columns declared in data.columns of {CONTRACT_FILE}",
    )


def _required_columns(frame: pd.DataFrame, contract: Contract) -> list[CheckResult]:
    target = contract.data.target
    required = [name for name in contract.data.columns if name != target]  # the target has its own check
    missing = [name for name in required if name not in frame.columns]
    if not missing:
        return [CheckResult("required_columns", None, "pass", f"all {len(required)} present", "declared columns",
                            "every declared column is present")]
    return [
        CheckResult("required_columns", name, "fail", "missing", "present",
                    f"column '{name}': declared in data.columns of {CONTRACT_FILE} but missing from the file; "
                    f"add the column to the data or remove it from the contract")
        for name in missing
    ]


def _extra_columns(frame: pd.DataFrame, declared: list[str]) -> list[CheckResult]:
    return [
        CheckResult("extra_columns", str(name), "warn", "present", "not in the contract",
                    f"column '{name}': in the file but not declared in data.columns of {CONTRACT_FILE}, so the "
                    f"model ignores it; declare it or drop it from the data")
        for name in frame.columns if name not in declared
    ]


def _min_rows(rows: int, min_rows: int) -> CheckResult:
    if rows >= min_rows:
        return CheckResult("min_rows", None, "pass", str(rows), f">= {min_rows}", f"{rows} rows")
    return CheckResult("min_rows", None, "fail", str(rows), f">= {min_rows}",
                       f"only {rows} row(s), the contract asks for at least {min_rows} (data.min_rows); "
                       f"add data or lower data.min_rows in {CONTRACT_FILE}")


def _column_checks(raw: pd.Series, name: str, column: Column, contract: Contract) -> list[CheckResult]:
    results, numbers = _type(raw, name, column)
    if name != contract.data.target:  # missing targets are the target check's business
        results.append(_missing(raw, name, column, contract.data.max_missing_share))
    if numbers is not None and (column.min is not None or column.max is not None):
        results.append(_range(numbers, name, column))
    if column.categories:
        results.append(_categories(raw, name, column.categories))
    return results


def _type(raw: pd.Series, name: str, column: Column) -> tuple[list[CheckResult], pd.Series | None]:
    """The type check, and the column as numbers when it is numeric and well typed."""
    if column.type == "category":
        return [], None  # any text is a category; `_categories` says which ones are allowed
    present = raw.dropna()
    expected = {"int": "whole numbers", "float": "numbers", "bool": "true/false/1/0"}[column.type]
    if column.type == "bool":
        bad = present[~present.str.strip().str.lower().isin(BOOL_VALUES)]
        problem = "is not a boolean"
        numbers = None
    else:
        numbers = pd.to_numeric(present, errors="coerce")
        bad = present[numbers.isna() | ~np.isfinite(numbers)]
        problem = "is not a finite number"
        if bad.empty and column.type == "int":
            bad = present[numbers != numbers.round()]
            problem = "is not a whole number"
    if bad.empty:
        return [CheckResult("type", name, "pass", column.type, column.type, f"column '{name}': all values are "
                            f"{expected}")], numbers
    first_index, first_value = next(iter(bad.items()))
    return [CheckResult(
        "type", name, "fail", f"{first_value!r} on line {_line(first_index)}", expected,
        f"column '{name}': value {first_value!r} on line {_line(first_index)} {problem} "
        f"({len(bad)} bad value(s): {_listed(bad.unique())}); the contract declares type '{column.type}'; "
        f"fix the data or change data.columns.{name}.type in {CONTRACT_FILE}",
    )], None


def _missing(raw: pd.Series, name: str, column: Column, default_share: float) -> CheckResult:
    missing = raw.isna()
    count, share = int(missing.sum()), float(missing.mean())
    if not column.nullable:
        limit = 0.0
    elif column.max_missing_share is not None:
        limit = column.max_missing_share
    else:
        limit = default_share
    seen = f"{count} ({_percent(share)})"
    if share <= limit:
        return CheckResult("missing", name, "pass", seen, f"<= {_percent(limit)}",
                           f"column '{name}': {count} missing value(s)")
    first = _line(missing.idxmax())
    if not column.nullable:
        return CheckResult("missing", name, "fail", seen, "none (not nullable)",
                           f"column '{name}': {count} missing value(s), first on line {first}, but the column is "
                           f"not nullable; fill them or set data.columns.{name}.nullable: true in {CONTRACT_FILE}")
    key = f"data.columns.{name}.max_missing_share" if column.max_missing_share is not None else "data.max_missing_share"
    return CheckResult("missing", name, "fail", seen, f"<= {_percent(limit)}",
                       f"column '{name}': {_percent(share)} of values missing ({count}, first on line {first}), "
                       f"over the limit {_percent(limit)} ({key}); fill the gaps or raise {key} in {CONTRACT_FILE}")


def _range(numbers: pd.Series, name: str, column: Column) -> CheckResult:
    low = -np.inf if column.min is None else column.min
    high = np.inf if column.max is None else column.max
    expected = f"[{_fmt(low)}, {_fmt(high)}]"
    seen = f"min {_fmt(numbers.min())}, max {_fmt(numbers.max())}" if len(numbers) else "no values"
    outside = numbers[(numbers < low) | (numbers > high)]
    if outside.empty:
        return CheckResult("range", name, "pass", seen, expected, f"column '{name}': all values within {expected}")
    return CheckResult("range", name, "fail", seen, expected,
                       f"column '{name}': {len(outside)} value(s) outside {expected} (seen {seen}, first on line "
                       f"{_line(outside.index[0])}); fix the data or widen data.columns.{name}.min/max in "
                       f"{CONTRACT_FILE}")


def _categories(raw: pd.Series, name: str, categories: tuple[str, ...]) -> CheckResult:
    expected = ", ".join(categories)
    present = raw.dropna()
    unknown = present[~present.isin(categories)]
    if unknown.empty:
        return CheckResult("categories", name, "pass", f"{present.nunique()} value(s)", expected,
                           f"column '{name}': all values are allowed categories")
    counts = unknown.value_counts(sort=False).sort_index()
    listed = ", ".join(f"{value!r} ({count})" for value, count in list(counts.items())[:SHOWN])
    return CheckResult("categories", name, "fail", listed, expected,
                       f"column '{name}': {len(unknown)} value(s) not in the allowed categories: {listed}"
                       f"{' and more' if len(counts) > SHOWN else ''}, first on line {_line(unknown.index[0])}; "
                       f"expected one of [{expected}]; fix the data or add them to data.columns.{name}.categories "
                       f"in {CONTRACT_FILE}")


def _duplicates(frame: pd.DataFrame, limit: float) -> CheckResult:
    duplicated = frame.duplicated()
    count, share = int(duplicated.sum()), float(duplicated.mean())
    seen, expected = f"{count} ({_percent(share)})", f"<= {_percent(limit)}"
    if share <= limit:
        return CheckResult("duplicates", None, "pass", seen, expected, f"{count} duplicated row(s)")
    return CheckResult("duplicates", None, "fail", seen, expected,
                       f"{count} duplicated row(s) ({_percent(share)} of rows, first on line "
                       f"{_line(duplicated.idxmax())}), over the limit {_percent(limit)} (data.max_duplicate_share); "
                       f"deduplicate the data or raise data.max_duplicate_share in {CONTRACT_FILE}")


def _target(frame: pd.DataFrame, contract: Contract) -> list[CheckResult]:
    target = contract.data.target
    if target not in frame.columns:
        return [CheckResult("target", target, "fail", "missing", "present",
                            f"column '{target}': the target (data.target) is missing from the file, so no model can "
                            f"be trained or evaluated on it; add the target column to the data")]
    values = frame[target]
    missing = values.isna()
    if missing.any():
        return [CheckResult("target", target, "fail", f"{int(missing.sum())} missing", "no missing values",
                            f"column '{target}': the target (data.target) has {int(missing.sum())} missing value(s), "
                            f"first on line {_line(missing.idxmax())}; label those rows or drop them")]
    if contract.model.task == "classification":
        return _classes(values.str.strip(), target, contract.data.test_size)
    return [CheckResult("target", target, "pass", f"{len(values)} values", "present, no missing values",
                        f"target '{target}' is valid")]


def _classes(labels: pd.Series, target: str, test_size: float) -> list[CheckResult]:
    """A classification target the stratified split (and so training and evaluation) can use.

    scikit-learn's stratified split needs at least 2 rows of every class (one on each side) and at
    least as many rows on each side as there are classes; anything less fails the pipeline later
    with a message naming no column, so it fails here first.
    """
    counts = labels.value_counts()
    if len(counts) < 2:
        return [CheckResult("target", target, "fail", f"{len(counts)} class(es)", ">= 2 classes",
                            f"column '{target}': the classification target (data.target) has only {len(counts)} "
                            f"class(es) ({_listed(counts.index)}); a classifier needs examples of at least 2: add "
                            f"rows of the other class(es), or use task: regression if the target is a quantity")]
    rare = counts[counts < 2]
    if not rare.empty:
        listed = ", ".join(f"{label!r} ({count} row)" for label, count in rare.items())
        first = _line(labels[labels == rare.index[0]].index[0])
        return [CheckResult("target", target, "fail", listed, ">= 2 rows per class",
                            f"column '{target}': class(es) {listed} of the target (data.target) have fewer than "
                            f"2 rows (first on line {first}); the stratified train/test split needs at least 2 "
                            f"rows of every class, one on each side; add rows of that class, merge it into "
                            f"another class, or drop its rows")]
    rows = len(labels)
    test_rows = math.ceil(test_size * rows)
    if min(test_rows, rows - test_rows) < len(counts):
        return [CheckResult("target", target, "fail", f"{len(counts)} classes, {rows} rows",
                            f"each side of the split holds >= {len(counts)} rows",
                            f"column '{target}': {len(counts)} classes but the split (data.test_size={test_size:g}) "
                            f"leaves {test_rows} test and {rows - test_rows} training rows; each side needs at least "
                            f"one row per class: add rows or change data.test_size in {CONTRACT_FILE}")]
    smallest = counts.idxmin()
    return [CheckResult("target", target, "pass", f"{len(counts)} classes (smallest {smallest!r}: {counts.min()})",
                        ">= 2 rows per class", f"target '{target}' is valid ({len(counts)} classes)")]

"""A starting contract from a dataset: `gitops-ml contract infer`.

Pure functions over a table read as strings (as data-check reads it). Each column gets a type,
a range with headroom, its categories, whether it may be missing; the task follows the target
unless given; metrics and promotion come from `core.defaults`. The result is YAML for a person to
review: what was guessed says so in a comment, and a suggested sensitive attribute stays
commented unless one was named.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import yaml

from gitops_ml.core import defaults
from gitops_ml.core.checks import BOOL_VALUES
from gitops_ml.errors import GitopsMLError

MAX_CATEGORIES = 50  # more distinct texts than this is an id or free text, not a category
MAX_CLASSES = 20  # a whole-number target with more distinct values than this is a quantity
HEADROOM = 0.1  # ranges widen by this share of the observed span on each side
SENSITIVE_NAMES = re.compile(r"gender|sex|race|ethnic|age_?group|age_?band|nationality|religion|disab|marital",
                             re.IGNORECASE)


class InferError(GitopsMLError):
    """The data cannot give a contract (no such target, nothing to learn from)."""


@dataclass(frozen=True)
class Inferred:
    task: str
    data: dict[str, Any]  # the data: section
    metrics: dict[str, Any]
    promotion: dict[str, Any]
    suggested_sensitive: str | None = None
    notes: dict[str, str] = field(default_factory=dict)  # column -> what was guessed
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it is not declared


def _headroom(low: float, high: float, whole: bool) -> tuple[float | int, float | int]:
    span = (high - low) or max(abs(high), 1.0)
    lo, hi = low - HEADROOM * span, high + HEADROOM * span
    if low >= 0:
        lo = max(lo, 0.0)  # a non-negative quantity stays non-negative
    if whole:
        return int(math.floor(lo)), int(math.ceil(hi))
    return _nice_down(lo), _nice_up(hi)


def _nice_down(value: float) -> float:
    if value == 0:
        return 0
    step = 10 ** (math.floor(math.log10(abs(value))) - 1)
    return round(math.floor(value / step) * step, 10)


def _nice_up(value: float) -> float:
    if value == 0:
        return 0
    step = 10 ** (math.floor(math.log10(abs(value))) - 1)
    return round(math.ceil(value / step) * step, 10)


def _clean(value: float | int) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def _column(values: pd.Series, is_target: bool, task: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The column's declaration and a note on what was guessed; (None, reason) for a column left out."""
    present = values.dropna().str.strip()
    present = present[present != ""]
    missing = float(1 - len(present) / len(values)) if len(values) else 0.0
    column: dict[str, Any]
    note = None
    if present.empty:
        return None, "every value is missing"
    numbers = pd.to_numeric(present, errors="coerce")
    if present.str.lower().isin(BOOL_VALUES).all() and not numbers.notna().all():
        column = {"type": "bool"}
    elif numbers.notna().all() and np.isfinite(numbers).all():
        whole = bool((numbers == numbers.round()).all())
        column = {"type": "int" if whole else "float"}
        distinct = numbers.nunique()
        if not (is_target and task == "classification"):
            low, high = _headroom(float(numbers.min()), float(numbers.max()), whole)
            column.update(min=_clean(low), max=_clean(high))
            note = f"seen {numbers.min():g} to {numbers.max():g}"
        elif distinct > MAX_CLASSES:
            note = f"{distinct} distinct values for a classification target"
    else:
        distinct = sorted(present.unique())
        if len(distinct) > MAX_CATEGORIES and not is_target:
            return None, f"{len(distinct)} distinct texts: an id or free text, not a category"
        column = {"type": "category", "categories": distinct}
    if missing > 0 and not is_target:
        column["nullable"] = True
        column["max_missing_share"] = min(1.0, max(0.05, math.ceil(missing * 200) / 100))
        note = (note + "; " if note else "") + f"{missing:.1%} missing"
    return column, note


def _task(values: pd.Series) -> str:
    present = values.dropna().str.strip()
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.notna().all() and not present.empty:
        whole = bool((numbers == numbers.round()).all())
        return "classification" if whole and numbers.nunique() <= MAX_CLASSES else "regression"
    return "classification"


def _sensitive(columns: dict[str, dict[str, Any]], target: str) -> str | None:
    candidates = [name for name, col in columns.items()
                  if name != target and col["type"] == "category" and 2 <= len(col["categories"]) <= 10]
    named = [name for name in candidates if SENSITIVE_NAMES.search(name)]
    return (named or [None])[0]


def _summary(values: pd.Series, task: str) -> defaults.TargetSummary:
    present = values.dropna().str.strip()
    if task == "regression":
        numbers = pd.to_numeric(present, errors="coerce").dropna()
        return defaults.TargetSummary("regression", spread=float(numbers.std()) if len(numbers) > 1 else 1.0)
    counts = present.value_counts()
    kind = "binary" if len(counts) <= 2 else "multiclass"
    return defaults.TargetSummary(kind, majority_share=float(counts.iloc[0] / counts.sum()) if len(counts) else 0.0)


def infer(frame: pd.DataFrame, target: str, train: str, task: str | None = None,
          sensitive_attribute: str | None = None) -> Inferred:
    """The contract sections for `frame` (values as strings), `target` its label column."""
    if target not in frame.columns:
        raise InferError(f"--target '{target}' is not a column of the data; its columns are {list(frame.columns)}")
    if sensitive_attribute is not None and sensitive_attribute not in frame.columns:
        raise InferError(f"--sensitive-attribute '{sensitive_attribute}' is not a column of the data")
    task = task or _task(frame[target])
    columns: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in frame.columns:
        column, note = _column(frame[name], name == target, task)
        if column is None:
            if name == target:
                raise InferError(f"the target '{target}' has no values")
            skipped[str(name)] = note or ""
            continue
        columns[str(name)] = column
        if note:
            notes[str(name)] = note
    if task == "regression" and columns[target]["type"] not in ("int", "float"):
        raise InferError(f"the target '{target}' is not numeric, so the task cannot be regression; "
                         "use --task classification")
    if len(columns) < 2:
        raise InferError("no feature column besides the target could be declared; the data needs at least one")
    if sensitive_attribute is not None and columns.get(sensitive_attribute, {}).get("type") != "category":
        raise InferError(f"--sensitive-attribute '{sensitive_attribute}' must be a text (category) column")
    rows = len(frame)
    duplicates = float(frame.duplicated().mean()) if rows else 0.0
    data: dict[str, Any] = {"train": train, "current": "data/production/current.csv", "target": target}
    if sensitive_attribute:
        data["sensitive_attribute"] = sensitive_attribute
    data.update(min_rows=max(1, min(1000, rows // 2)), max_missing_share=0.05,
                max_duplicate_share=max(0.01, math.ceil(duplicates * 200) / 100), test_size=0.2, split_seed=42,
                columns=columns)
    summary = _summary(frame[target], task)
    return Inferred(task, data, defaults.metrics(summary.kind), defaults.promotion(summary, sensitive_attribute),
                    None if sensitive_attribute else _sensitive(columns, target), notes, skipped)


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10_000)
    return text.strip().removesuffix("...").strip()  # a plain scalar ends with YAML's document-end marker


def render_data(inferred: Inferred, command: str) -> str:
    """The `data:` section as YAML, one line per column, guesses and suggestions as comments."""
    data = inferred.data
    lines = [f"# Inferred by `{command}`: review every line (types, ranges, categories, nullability).", "data:"]
    width = max(len(name) for name in data["columns"]) + 1
    for key, value in data.items():
        if key == "columns":
            continue
        lines.append(f"  {key}: {_flow(value)}")
        if key == "target" and inferred.suggested_sensitive:
            lines.append(f"  # sensitive_attribute: {inferred.suggested_sensitive}   # suggested: fairness compares "
                         "its groups; uncomment if it is one")
    lines.append("  columns:")
    for name, column in data["columns"].items():
        note = inferred.notes.get(name)
        lines.append(f"    {_flow(name) + ':':<{width + 1}} {_flow(column)}" + (f"  # {note}" if note else ""))
    for name, why in inferred.skipped.items():
        lines.append(f"    # {name}: not declared ({why}); the model ignores it")
    return "\n".join(lines) + "\n"


def render_section(name: str, value: dict[str, Any]) -> str:
    """One top-level section as block YAML, its innermost mappings and lists on one line."""
    return yaml.safe_dump({name: value}, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)


def render_policy(inferred: Inferred) -> str:
    """The `metrics:` and `promotion:` sections for the task."""
    return render_section("metrics", inferred.metrics) + render_section("promotion", inferred.promotion)


_TOP = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):")


def _blocks(text: str) -> list[tuple[str | None, list[str]]]:
    """The file as (top-level key, its lines); comments and blank lines right above a key belong to it."""
    blocks: list[tuple[str | None, list[str]]] = [(None, [])]
    pending: list[str] = []
    for line in text.splitlines(keepends=True):
        match = _TOP.match(line)
        if match:
            blocks.append((match.group(1), [*pending, line]))
            pending = []
        elif not line.strip() or line.startswith("#"):
            pending.append(line)
        else:
            blocks[-1][1].extend([*pending, line])
            pending = []
    blocks[-1][1].extend(pending)
    return blocks


def replace_sections(text: str, sections: dict[str, str], task: str) -> str:
    """The contract text with these top-level sections replaced and `model.task` set; every other line,
    comments included, kept as it was. A section the file lacks goes after the last one it has."""
    blocks = _blocks(text)
    keys = [key for key, _ in blocks]
    missing = [key for key in sections if key not in keys]
    last = max((i for i, key in enumerate(keys) if key in sections), default=len(keys) - 1)
    out: list[str] = []
    for i, (key, lines) in enumerate(blocks):
        if key in sections:
            out.append("\n" + sections[key].rstrip("\n") + "\n")
        elif key == "model":
            body = "".join(lines)
            if re.search(r"^  task:", body, flags=re.MULTILINE):
                body = re.sub(r"^(  task:[ \t]*)[^\s#]+", lambda m: m.group(1) + task, body, count=1,
                              flags=re.MULTILINE)
            else:
                body = body.replace("model:\n", f"model:\n  task: {task}\n", 1)
            out.append(body)
        else:
            out.append("".join(lines))
        if i == last:
            out += ["\n" + sections[name].rstrip("\n") + "\n" for name in missing]
    if "model" not in keys:
        out.insert(0, f"model:\n  task: {task}\n")
    return re.sub(r"\n{3,}", "\n\n", "".join(out)).lstrip("\n")

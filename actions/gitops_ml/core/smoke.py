"""The smoke test's verdict, as pure functions: what a new deployment answered, against what the
registered model version predicts offline.

A deployment passes when `/health` and `/ready` answer 200, `/metadata` names the expected model,
version and image digest, and `/predict` on the golden rows returns the offline predictions:
labels exactly, numbers (probabilities, regression values) within `REL_TOL` (the serving app's
vectorised preprocessor may differ from scikit-learn's in the last bits, never more).
The same verdict serves every deploy target; only how the answers are fetched differs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.errors import GitopsMLError

REL_TOL = 1e-6
ABS_TOL = 1e-9
SHOWN = 3  # mismatches listed in a failure message


class GoldenError(GitopsMLError):
    """The golden expectations file is unreadable or does not fit the model being deployed."""


@dataclass(frozen=True)
class Golden:
    """Rows to send and what the registered version predicts for them (written by `build-image`)."""

    model_name: str
    version: str
    rows: list[dict[str, Any]]
    predictions: list[Any]
    probabilities: list[Any] | None
    source: str  # where the rows came from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> Golden:
        fields = ("model_name", "version", "rows", "predictions", "probabilities", "source")
        if not isinstance(raw, dict) or any(name not in raw for name in fields):
            raise GoldenError(f"{where}: not golden expectations (needs {', '.join(fields)}); "
                              "rebuild it with `gitops-ml build-image`")
        golden = cls(**{name: raw[name] for name in fields})
        if not golden.rows or len(golden.rows) != len(golden.predictions):
            raise GoldenError(f"{where}: {len(golden.rows)} rows but {len(golden.predictions)} predictions")
        return golden


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status (None when nothing answered), parsed JSON body, or the error seen."""

    status: int | None
    body: Any = None
    error: str | None = None

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        return f"HTTP {self.status} {str(self.body)[:200]}"


@dataclass(frozen=True)
class Observed:
    health: Answer
    ready: Answer
    metadata: Answer
    predict: Answer


def pick_rows(frame: pd.DataFrame, count: int) -> list[int]:
    """Positions of `count` rows spread evenly over the frame, plus the first row with a missing
    value when the spread has none (so the null path is smoke-tested too)."""
    total = len(frame)
    if total == 0:
        return []
    picks = sorted({int(i) for i in np.linspace(0, total - 1, num=min(count, total))})
    missing = np.flatnonzero(frame.isna().any(axis=1).to_numpy())
    if len(missing) and not set(missing) & set(picks):
        picks = sorted([*picks[: max(count - 1, 1)], int(missing[0])])
    return picks


def json_rows(frame: pd.DataFrame, features: list[str]) -> list[dict[str, Any]]:
    """Rows as the serving API takes them: features only, missing values as null, plain JSON types."""
    rows = []
    for record in frame[features].astype(object).to_dict(orient="records"):
        rows.append({name: _plain(value) for name, value in record.items()})
    return rows


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def mismatches(name: str, expected: Any, actual: Any) -> list[str]:
    """Where `actual` differs from `expected`: exact for labels, within tolerance for numbers."""
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            size = len(actual) if isinstance(actual, list) else type(actual).__name__
            return [f"{name}: expected {len(expected)} values, got {size}"]
        return [found for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for found in mismatches(f"{name}[{i}]", e, a)]
    if _number(expected) and _number(actual):
        if isinstance(expected, float) or isinstance(actual, float):
            same = math.isclose(expected, actual, rel_tol=REL_TOL, abs_tol=ABS_TOL)
        else:
            same = expected == actual
    else:
        same = type(expected) is type(actual) and expected == actual
    return [] if same else [f"{name}: expected {expected!r}, got {actual!r}"]


def problems(observed: Observed, golden: Golden, image_digest: str | None) -> list[str]:
    """Everything wrong with a deployment's answers; empty when the smoke test passes."""
    found: list[str] = []
    for path, answer in (("/health", observed.health), ("/ready", observed.ready)):
        if answer.status != 200:
            found.append(f"GET {path}: {answer.describe()}")
    meta = observed.metadata
    if meta.status != 200 or not isinstance(meta.body, dict):
        found.append(f"GET /metadata: {meta.describe()}")
    else:
        expected = {"name": golden.model_name, "version": golden.version}
        if image_digest:
            expected["image_digest"] = image_digest
        for key, value in expected.items():
            if str(meta.body.get(key)) != value:
                found.append(f"GET /metadata: {key} is {meta.body.get(key)!r}, expected {value!r}")
    answer = observed.predict
    if answer.status != 200 or not isinstance(answer.body, dict):
        found.append(f"POST /predict ({len(golden.rows)} golden rows): {answer.describe()}")
        return found
    wrong = mismatches("predictions", golden.predictions, answer.body.get("predictions"))
    if golden.probabilities is not None:
        wrong += mismatches("probabilities", golden.probabilities, answer.body.get("probabilities"))
    if wrong:
        found.append(f"POST /predict: {len(wrong)} value(s) differ from version {golden.version}'s offline "
                     f"predictions, e.g. {'; '.join(wrong[:SHOWN])}")
    return found

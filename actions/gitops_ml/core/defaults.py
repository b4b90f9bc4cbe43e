"""First-class defaults per kind of problem: binary, multiclass, regression.

What `gitops-ml contract infer` writes under `metrics:` and `promotion:`, and what the template's
own gitops-ml.yaml follows. Floors are the trivial baseline a model must beat, measured on the
data: the majority class's share for accuracy, 0 for R² (predicting the mean); allowances that
have the target's unit (regression) are a share of the target's spread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True)
class TargetSummary:
    """What the defaults need to know about the target, measured on the training data."""

    kind: Kind
    majority_share: float | None = None  # classification: the most frequent class's share of rows
    spread: float | None = None  # regression: the target's standard deviation


def _nice(value: float) -> float:
    """Two significant digits: allowances are judgement calls, not measurements."""
    return float(f"{value:.2g}") if value else 0.0


def metrics(kind: Kind) -> dict[str, Any]:
    if kind == "binary":
        return {"primary": "roc_auc", "report": ["accuracy", "balanced_accuracy", "f1", "precision", "recall",
                                                 "log_loss"]}
    if kind == "multiclass":  # f1, precision and recall are macro averages: every class counts the same
        return {"primary": "f1", "report": ["accuracy", "balanced_accuracy", "log_loss", "precision", "recall"]}
    return {"primary": "rmse", "report": ["mae", "r2"]}


def promotion(target: TargetSummary, sensitive_attribute: str | None = None) -> dict[str, Any]:
    """min_improvement, guards, floors, latency, fairness (with a sensitive attribute) and bootstrap."""
    kind = target.kind
    if kind == "regression":
        spread = target.spread or 1.0
        guards = {"mae": {"max_drop": _nice(0.05 * spread)}}
        floors = {"r2": 0.0}  # better than predicting the mean
        fairness = {"metric": "mae", "max_gap": _nice(0.25 * spread), "min_group_size": 30}
        margin = _nice(0.02 * spread)
    else:
        if kind == "binary":
            guards = {"accuracy": {"max_drop": 0.01}, "f1": {"max_drop": 0.05}}
        else:
            guards = {"accuracy": {"max_drop": 0.01}, "log_loss": {"max_drop": 0.05}}
        baseline = target.majority_share if target.majority_share is not None else 0.0
        floors = {"accuracy": round(min(baseline + 0.005, 0.99), 3)}  # better than always the majority class
        if kind == "binary":
            floors["roc_auc"] = 0.6  # 0.5 is chance
        fairness = {"metric": "accuracy", "max_gap": 0.1, "min_group_size": 30}
        margin = 0.01
    result: dict[str, Any] = {"min_improvement": 0.0, "guards": guards, "floors": floors, "latency_p95_ms": 50}
    if sensitive_attribute:
        result["fairness"] = fairness
    result["bootstrap"] = {"samples": 1000, "confidence": 0.95, "require": "non_inferiority", "margin": margin}
    return result

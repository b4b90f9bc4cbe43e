"""Plots for reports (PNG files). matplotlib is imported lazily and drawn without a display."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gitops_ml.core.contract import Contract
from gitops_ml.core.evaluation import Evaluation


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def evaluation_plot(result: Evaluation, contract: Contract, path: Path) -> Path:
    """Classification: confusion matrix and per-group metric; regression: predicted vs actual."""
    plt = _pyplot()
    p = result.predictions
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    if contract.model.task == "classification":
        from sklearn.metrics import ConfusionMatrixDisplay

        ConfusionMatrixDisplay.from_predictions(p.y_true, p.y_pred, ax=axes[0], colorbar=False)
        axes[0].set_title("Confusion matrix (held-out data)")
    else:
        axes[0].scatter(p.y_true, p.y_pred, s=6, alpha=0.5)
        low, high = float(np.min(p.y_true)), float(np.max(p.y_true))
        axes[0].plot([low, high], [low, high], color="grey", linestyle="--")
        axes[0].set_xlabel("actual")
        axes[0].set_ylabel("predicted")
        axes[0].set_title("Predicted vs actual (held-out data)")
    metric = contract.promotion.fairness.metric if contract.promotion.fairness else contract.metrics.primary
    if result.slices:
        groups = list(result.slices)
        axes[1].bar(groups, [result.slices[g][metric] for g in groups])
        axes[1].set_title(f"{metric} by {contract.data.sensitive_attribute}")
    else:
        axes[1].axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

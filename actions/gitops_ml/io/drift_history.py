"""The drift runs' history, kept in MLflow (experiment `<model>-drift`), and the trend plot drawn from it.

Each `gitops-ml drift` run is one MLflow run: the share of drifted columns, every column's p-value,
the prediction drift and the live metrics as metrics; the outcome as tags; the reports as
artifacts. The trend plot shows the last `drift.trend_runs` runs. When the tracking server cannot be
reached the run still reports; only its history is missing (a warning says so).
"""

from __future__ import annotations

import math
from pathlib import Path

from gitops_ml.core.contract import Contract
from gitops_ml.io.plots import _pyplot
from gitops_ml.io.registry import tracking_uri


class HistoryError(Exception):
    """The history could not be written or read (a warning, never a failed run)."""


def experiment_name(contract: Contract) -> str:
    return f"{contract.registry.model_name}-drift"


def _metrics(result: dict) -> dict[str, float]:
    metrics = {"current_rows": float(result["current"]["rows"])}
    data = result.get("data_drift")
    if data:
        metrics["drifted_share"] = float(data["share"])
        metrics["drifted_columns"] = float(len(data["drifted_columns"]))
        for column in data["columns"]:
            if column["score"] is not None:
                metrics[f"p_{column['column']}"] = float(column["score"])
    prediction = result.get("prediction_drift")
    if prediction and prediction["p_value"] is not None:
        metrics["p_prediction"] = float(prediction["p_value"])
    performance = result.get("performance") or {}
    for metric, value in (performance.get("live") or {}).items():
        if value is not None:
            metrics[f"live_{metric}"] = float(value)
    return {k: v for k, v in metrics.items() if not math.isnan(v)}


def record(contract: Contract, result: dict, out: Path) -> list[dict]:
    """Log this run, then return the last runs (oldest first) as dicts: start time, status, metrics."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri(contract))
    try:
        experiment = mlflow.set_experiment(experiment_name(contract))
        with mlflow.start_run(run_name=f"drift {result['status']}"):
            mlflow.set_tags({"gitops_ml.drift.status": result["status"],
                             "gitops_ml.drift.drifted": str(result["drifted"]).lower(),
                             "gitops_ml.drift.data_hash": result.get("data_hash") or ""})
            mlflow.log_metrics(_metrics(result))
            for name in ("result.json", "summary.md"):
                if (out / name).is_file():
                    mlflow.log_artifact(str(out / name))
        runs = mlflow.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"],
                                  max_results=contract.drift.trend_runs, output_format="list")
    except (MlflowException, OSError) as error:
        raise HistoryError(f"the drift history in MLflow is unavailable: {getattr(error, 'message', error)}") from None
    return [{"start": run.info.start_time, "status": run.data.tags.get("gitops_ml.drift.status", ""),
             "metrics": dict(run.data.metrics)} for run in reversed(runs)]


def trend_plot(history: list[dict], contract: Contract, path: Path) -> Path:
    """Share of drifted columns per run, with the dataset-drift line; live primary metric when there is one."""
    from datetime import UTC, datetime

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    times = [datetime.fromtimestamp(h["start"] / 1000, UTC) for h in history]
    shares = [h["metrics"].get("drifted_share", math.nan) for h in history]
    colours = ["tab:red" if h["status"] == "drifted" else "tab:green" if h["status"] == "stable" else "tab:gray"
               for h in history]
    ax.plot(times, shares, color="tab:blue", linewidth=1, zorder=1)
    ax.scatter(times, [0 if math.isnan(s) else s for s in shares], c=colours, zorder=2)
    ax.axhline(contract.drift.max_drifted_share, color="tab:red", linestyle="--", linewidth=1,
               label=f"dataset drift at {contract.drift.max_drifted_share:g}")
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("share of drifted columns")
    ax.set_title(f"{contract.registry.model_name}: drift over the last {len(history)} run(s) "
                 "(green stable, red drifted, grey insufficient data)")
    primary = f"live_{contract.metrics.primary}"
    if any(primary in h["metrics"] for h in history):
        other = ax.twinx()
        other.plot(times, [h["metrics"].get(primary, math.nan) for h in history], color="tab:purple",
                   marker="x", linewidth=1, label=f"live {contract.metrics.primary}")
        other.set_ylabel(f"live {contract.metrics.primary}")
        other.legend(loc="upper right")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

"""`gitops-ml drift`: has production data moved away from what the champion was trained on?

Current data is what the contract's `drift.current` says: `file` (data.current, a CSV or Parquet
file or a folder of them), `dvc` (data.current, pulled with DVC first) or `predictions` (the last
`drift.window_hours` of the serving app's prediction log, with the labels sent to /feedback). The
reference is the champion's reference data in MLflow (or `--reference`).

Measured: every feature's drift (the drift engine: Evidently's KS / chi-square decisions over all
rows), the share of drifted columns, the drift of the champion's predictions (the log's, or the
champion's own on a sample of the current data, against its predictions on the reference) and, with
labels, live performance against the champion's offline metrics and the contract's floors.

Writes to `--out`: result.json, summary.md (also the job summary), drift.html (Evidently, on a
sample), trend.png (the last runs, from the history kept in MLflow) and, when labelled rows exist,
labeled.csv (what `gitops-ml retrain-pr` adds to the training data). Outputs `status` (drifted,
stable or insufficient data), `drifted`, `retrain`, `alert`. Drift is a result, not a failure: the
exit code is 0 unless `--fail-on-drift`.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from gitops_ml.commands import options
from gitops_ml.core.contract import LOWER_IS_BETTER, Contract
from gitops_ml.core.drift import (
    CHISQUARE,
    KS,
    ColumnDrift,
    chisquare_counts,
    decide_tests,
    drift_markdown,
    judge_performance,
    ks_small,
    monitoring_verdict,
)
from gitops_ml.io import gha

PREDICT_SAMPLE_ROWS = 20_000  # rows of the current data the champion predicts on (prediction drift, live metrics)
LABELED_CSV = "labeled.csv"


@dataclass(frozen=True)
class Inputs:
    root: Path
    out: Path
    current: Path | None = None  # overrides the contract's drift.current (a file or folder)
    reference: Path | None = None  # default: the champion's reference data in MLflow
    fail_on_drift: bool = False
    no_history: bool = False


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _current_table(contract: Contract, inputs: Inputs):
    """(Table or None, how it is named, why there is none)."""
    from gitops_ml.io.drift_engine import Table
    from gitops_ml.io.prediction_log import log_dir, window

    root = inputs.root
    if inputs.current is not None or contract.drift.current in ("file", "dvc"):
        path = inputs.current or root / contract.data.current
        if inputs.current is None and contract.drift.current == "dvc":
            from gitops_ml.io.repo import run_dvc

            run_dvc(["pull", contract.data.current], cwd=root)
        shown = _shown(path, root)
        if not path.exists():
            return None, shown, f"no current data at {shown} (drift.current: {contract.drift.current})"
        return Table.file(path, shown), shown, None
    folder = log_dir(contract, root)
    found = window(folder, contract, contract.drift.window_hours)
    shown = f"{found.shown} in {_shown(folder, root)}"
    if found.table is None:
        return None, shown, f"no predictions logged in the last {contract.drift.window_hours:g} h in {folder}"
    return found.table, shown, None


def _reference(contract: Contract, inputs: Inputs, tmp: Path):
    """(path or None, source, champion version or None)."""
    if inputs.reference is not None:
        return inputs.reference, _shown(inputs.reference, inputs.root), None
    from gitops_ml.io.reference import champion_reference
    from gitops_ml.io.registry import CHAMPION, Registry

    champion = champion_reference(contract, tmp)
    if champion.path is None:
        return None, champion.source, None
    return champion.path, champion.source, Registry.for_contract(contract).by_alias(CHAMPION)


def _typed(frame, contract: Contract):
    """Engine rows (numbers as floats, categories as text) as the model takes them."""
    import pandas as pd

    frame = frame.copy()
    for name in contract.data.features:
        if contract.data.columns[name].type == "int":
            frame[name] = pd.array(frame[name].round(), dtype="Int64")
    return frame


def _labels(values, contract: Contract):
    import numpy as np
    import pandas as pd

    target = contract.data.columns[contract.data.target]
    if contract.model.task == "regression":
        return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")
    if target.type == "category":
        return np.asarray([str(v) for v in values], dtype=object)
    if target.type == "bool":
        return np.asarray([str(v).lower() in ("1", "true", "1.0") for v in values]).astype("int64")
    return pd.to_numeric(pd.Series(values), errors="coerce").round().astype("int64").to_numpy()


def _prediction_drift(contract: Contract, reference_predictions, current_predictions) -> tuple[ColumnDrift, dict]:
    threshold = contract.drift.column_threshold
    if contract.model.task == "classification":
        import collections

        ref = collections.Counter(str(v) for v in reference_predictions)
        cur = collections.Counter(str(v) for v in current_predictions)
        statistic, p = chisquare_counts(ref, cur)
        drifted, test = math.isnan(p) or p < threshold, CHISQUARE
    else:
        statistic, p = ks_small([float(v) for v in reference_predictions], [float(v) for v in current_predictions])
        drifted, test = math.isnan(p) or p <= threshold, KS
    summary = {"test": test, "statistic": None if math.isnan(statistic) else statistic,
               "p_value": None if math.isnan(p) else p, "drifted": drifted,
               "rows": {"reference": len(reference_predictions), "current": len(current_predictions)}}
    return ColumnDrift("prediction", p, drifted), summary


def _offline_metrics(version) -> dict[str, float]:
    if version is None or not version.run_id:
        return {}
    import mlflow

    return dict(mlflow.MlflowClient().get_run(version.run_id).data.metrics)


def _export_labeled(engine, table, contract: Contract, path: Path) -> tuple[int, str | None]:
    """The labelled current rows (contract columns present in the data, as text) to CSV; (rows, md5)."""
    from gitops_ml.io.drift_engine import quote_ident, quote_text

    have = set(engine.columns_of(table))
    target = contract.data.target
    if target not in have:
        return 0, None
    columns = [name for name in contract.data.columns if name in have]
    select = ", ".join(f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in columns)
    engine.db.execute("SET preserve_insertion_order = true")  # the same data gives the same file, the same hash
    engine.db.execute(f"COPY (SELECT {select} FROM {table.sql} WHERE {quote_ident(target)} IS NOT NULL) "
                      f"TO {quote_text(str(path))} (HEADER, DELIMITER ',')")
    rows = int(engine.db.execute(f"SELECT count(*) FROM read_csv({quote_text(str(path))}, all_varchar = true)")
               .fetchone()[0])
    if rows == 0:
        path.unlink()
        return 0, None
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return rows, digest.hexdigest()


def _measure(contract: Contract, inputs: Inputs, table, reference: Path, reference_source: str, champion,
             result: dict) -> tuple:
    """Data drift, prediction drift, live performance; fills `result`. Returns (drift, prediction, performance)."""
    from gitops_ml.core import metrics as metric_fns
    from gitops_ml.core.dataset import to_matrix
    from gitops_ml.core.evaluation import predict
    from gitops_ml.io.drift_engine import Engine, Table, feature_split, measure, number_sql, quote_ident
    from gitops_ml.io.evidently_drift import HTML_SAMPLE_ROWS, save_html
    from gitops_ml.io.prediction_log import PREDICTION, SCORE

    numeric, categorical = feature_split(contract)
    threshold = contract.drift.column_threshold
    out = inputs.out
    with Engine() as engine:
        measured = measure(Table.file(reference, reference_source), table, numeric, categorical,
                           threshold=threshold, engine=engine)
        result["current"]["rows"], result["reference"]["rows"] = measured.n_current, measured.n_reference
        if measured.n_current < contract.drift.min_current_rows:
            return None, None, None
        drift = decide_tests(measured.tests, threshold, contract.drift.max_drifted_share)
        tests = {t.column: t for t in measured.tests}
        result["data_drift"] = {**drift.to_dict(), "columns": [
            {**c, "test": tests[c["column"]].test, "statistic": float(f"{tests[c['column']].statistic:.6g}")
             if not math.isnan(tests[c["column"]].statistic) else None, "exact_p_value": tests[c["column"]].exact}
            for c in drift.to_dict()["columns"]]}
        with gha.group("Evidently's HTML report (on a sample)"):
            save_html(engine.sample("reference", HTML_SAMPLE_ROWS), engine.sample("current", HTML_SAMPLE_ROWS),
                      contract, out / "drift.html")
        labeled_rows, data_hash = _export_labeled(engine, table, contract, out / LABELED_CSV)
        result["labeled"] = {"rows": labeled_rows, "file": LABELED_CSV if labeled_rows else None}
        result["data_hash"] = data_hash

        prediction = performance = None
        if champion is None:
            result["notes"].append("no champion model: prediction drift and live performance not measured")
            return drift, None, None
        from gitops_ml.io.registry import Registry

        model = Registry.for_contract(contract).load_sklearn(champion.version)
        ref_frame = _typed(engine.sample("reference", 50_000, seed=1), contract)
        ref_predictions, _ = predict(model, to_matrix(ref_frame, contract.data.features), contract.model.task)
        have = set(engine.columns_of(table))
        target = contract.data.target
        from_log = PREDICTION in have
        extra = [c for c in (PREDICTION, SCORE, target) if c in have]
        parts = [f"{number_sql(quote_ident(c))} AS {quote_ident(c)}" for c in numeric]  # parsed as the engine does
        parts += [f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in [*categorical, *extra]]
        raw = engine.db.execute(f"SELECT {', '.join(parts)} FROM {table.sql} "
                                f"USING SAMPLE reservoir({PREDICT_SAMPLE_ROWS} ROWS) REPEATABLE (2)").df()
        frame = _typed(raw, contract)
        if from_log:
            current_predictions = frame[PREDICTION].dropna().tolist()
        else:
            current_predictions, _ = predict(model, to_matrix(frame, contract.data.features), contract.model.task)
            current_predictions = list(current_predictions)
        if current_predictions:
            prediction, result["prediction_drift"] = _prediction_drift(contract, list(ref_predictions),
                                                                       current_predictions)
        if target in frame and frame[target].notna().any():
            labelled = frame[frame[target].notna()]
            y_true = _labels(labelled[target].tolist(), contract)
            if from_log:
                y_pred = _labels(labelled[PREDICTION].tolist(), contract)
                y_score = labelled[SCORE].to_numpy(dtype="float64") if SCORE in labelled and \
                    labelled[SCORE].notna().all() else None
            else:
                y_pred, y_score = predict(model, to_matrix(labelled, contract.data.features), contract.model.task)
            live = metric_fns.compute(contract.metric_names, y_true, y_pred, y_score)
        else:
            live, y_true = {}, []
        offline = {k: v for k, v in _offline_metrics(champion).items() if k in contract.metric_names}
        performance = judge_performance(
            live, offline, len(y_true), primary=contract.metrics.primary, floors=contract.promotion.floors,
            max_drop=contract.drift.max_live_drop, min_labels=contract.drift.min_labels,
            lower_is_better=LOWER_IS_BETTER)
        result["performance"] = performance.to_dict()
    return drift, prediction, performance


def run(contract: Contract, inputs: Inputs) -> dict:
    out = inputs.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("drift.html", "trend.png", LABELED_CSV):
        (out / stale).unlink(missing_ok=True)  # never leave an older run's report next to this one
    table, current_source, missing = _current_table(contract, inputs)
    result: dict = {"model": contract.registry.model_name, "current": {"source": current_source, "rows": 0},
                    "reference": {"source": None, "rows": 0}, "data_drift": None, "prediction_drift": None,
                    "performance": None, "labeled": {"rows": 0, "file": None}, "data_hash": None, "notes": [],
                    "thresholds": {"column_threshold": contract.drift.column_threshold,
                                   "max_drifted_share": contract.drift.max_drifted_share,
                                   "min_current_rows": contract.drift.min_current_rows,
                                   "min_labels": contract.drift.min_labels,
                                   "max_live_drop": contract.drift.max_live_drop,
                                   "floors": dict(contract.promotion.floors)}}
    drift = prediction = performance = None
    with tempfile.TemporaryDirectory(prefix="gitops-ml-reference-") as tmp:
        reference, reference_source, champion = _reference(contract, inputs, Path(tmp))
        result["reference"]["source"] = reference_source
        if champion is not None:
            result["champion"] = champion.version
        if reference is None and missing is None:
            missing = f"no reference data to compare with ({reference_source})"
        if missing is None:
            drift, prediction, performance = _measure(contract, inputs, table, reference, reference_source, champion,
                                                      result)
    verdict = monitoring_verdict(result["current"]["rows"], contract.drift.min_current_rows, drift, prediction,
                                 performance, missing)
    result.update(status=verdict.status, drifted=verdict.drifted, retrain=verdict.retrain, alert=verdict.alert,
                  reasons=list(verdict.reasons))
    markdown = drift_markdown(result)
    gha.write_text(out / "summary.md", markdown)
    (out / "result.json").write_text(_json(result))
    if not inputs.no_history:
        from gitops_ml.io.drift_history import HistoryError, record, trend_plot

        try:
            history = record(contract, result, out)
            trend_plot(history, contract, out / "trend.png")
            result["trend"] = {"runs": len(history), "plot": "trend.png"}
        except HistoryError as error:
            gha.warning(f"drift trend not drawn: {error}")
    gha.publish(out / "result.json", result, markdown, out / "summary.md",
                outputs={"status": verdict.status, "drifted": str(verdict.drifted).lower(),
                         "retrain": str(verdict.retrain).lower(), "alert": str(verdict.alert).lower(),
                         "report": out.resolve()})
    gha.log(f"drift: {verdict.status}" + "".join(f"\n  - {reason}" for reason in verdict.reasons)
            + f"\nreports in {out}")
    if verdict.status == "drifted":
        gha.warning(f"drift: {'; '.join(verdict.reasons)}")
    return result


def _json(result: dict) -> str:
    import json

    return json.dumps(result, indent=2, default=str) + "\n"


@click.command("drift")
@options.contract
@options.tracking_uri
@options.path_option("--current", envvar="GITOPS_ML_CURRENT", default=None,
                     help="current data, a CSV/Parquet file or folder  [default: as drift.current says]")
@options.path_option("--reference", envvar="GITOPS_ML_REFERENCE", default=None,
                     help="reference data  [default: the champion's reference data in MLflow]")
@click.option("--fail-on-drift", is_flag=True, envvar="GITOPS_ML_FAIL_ON_DRIFT", help="exit 1 when drifted")
@click.option("--no-history", is_flag=True, envvar="GITOPS_ML_NO_HISTORY",
              help="do not record this run in MLflow (and draw no trend plot)")
@options.out("reports/drift", "folder for result.json, summary.md, drift.html, trend.png and labeled.csv")
def cli(**given) -> int:
    """Measure drift of current data (a file, a DVC-tracked path or the prediction log) against the champion's
    reference data: per-column drift, prediction drift and live performance, decided by the contract."""
    contract, inputs = options.build(Inputs, given)
    result = run(contract, inputs)
    return 1 if inputs.fail_on_drift and result["drifted"] else 0

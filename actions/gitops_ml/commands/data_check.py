"""`gitops-ml data-check`: check a dataset against the contract, and for drift, before training on it.

Writes `result.json` (every check and the drift decision; deterministic, because the DVC
`validate` stage declares it as an output), `summary.md` (the same as a Markdown table, also
added to the job summary) and `drift.html` (Evidently's report) when drift was measured.
Failed checks exit 1 after the reports are written; warnings do not.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from gitops_ml.commands import options
from gitops_ml.core.checks import CheckResult, overall
from gitops_ml.core.contract import Contract
from gitops_ml.core.drift import drift_check, drift_skipped
from gitops_ml.core.report import data_check_markdown, data_check_table
from gitops_ml.io import csv_input, gha


@dataclass(frozen=True)
class Inputs:
    root: Path
    out: Path
    data: Path | None = None  # default: data.train from the contract
    reference: Path | None = None  # default: the champion's reference data in MLflow
    no_drift: bool = False
    fail_on_drift: bool = False


def _shown(path: Path, root: Path) -> str:
    """A path as the report shows it: relative to the repository when inside it, so reports are stable."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _measure(data: Path, contract: Contract, reference: Path | None, root: Path, out: Path,
             fail_on_drift: bool) -> tuple[list[CheckResult], dict | None]:
    """The drift check result(s) and the drift summary for result.json.

    The decision is the drift engine's, over all rows of both files; Evidently's HTML report is drawn
    on a sample of each.
    """
    from gitops_ml.io.drift_engine import DriftDataError, Table, measure_contract
    from gitops_ml.io.evidently_drift import HTML_SAMPLE_ROWS, METHOD

    with tempfile.TemporaryDirectory(prefix="gitops-ml-reference-") as tmp:
        if reference is None:
            from gitops_ml.io.reference import champion_reference

            champion = champion_reference(contract, Path(tmp))
            if champion.path is None:
                return [drift_skipped(champion.source)], None
            reference, source = champion.path, champion.source
        else:
            source = _shown(reference, root)
        with gha.group(f"drift against {source}"):
            try:
                drift, measured = measure_contract(Table.file(reference, source), Table.file(data, _shown(data, root)),
                                                   contract, out / "drift.html")
            except DriftDataError as error:
                return [drift_skipped(f"the reference data or the data cannot be compared: {error}")], None
    summary = {"reference": source, "method": METHOD, "report": "drift.html",
               "report_sample_rows": HTML_SAMPLE_ROWS, "rows": {"reference": measured.n_reference,
                                                                "current": measured.n_current},
               **drift.to_dict()}
    return [drift_check(drift, fail_on_drift)], summary


def run(contract: Contract, inputs: Inputs) -> dict:
    root, out = inputs.root, inputs.out
    data = inputs.data or root / contract.data.train
    frame, results = csv_input.check_file(data, contract)
    (out / "drift.html").unlink(missing_ok=True)  # never leave an older run's report next to this one
    drift_summary = None
    if not inputs.no_drift and contract.drift.check_on_data_check and frame is not None:
        drift_results, drift_summary = _measure(data, contract, inputs.reference, root, out, inputs.fail_on_drift)
        results += drift_results
    shown = _shown(data, root)
    result = {
        "data": shown,
        "status": overall(results),
        "failed": sum(r.status == "fail" for r in results),
        "warnings": sum(r.status == "warn" for r in results),
        "checks": [r.to_dict() for r in results],
        "drift": drift_summary,
    }
    # absolute report path: later steps may run in another folder
    gha.publish(out / "result.json", result, data_check_markdown(results, shown, drift_summary), out / "summary.md",
                outputs={"status": result["status"], "failed": result["failed"], "report": out.resolve()},
                sort_keys=True)
    gha.log(data_check_table(results))
    gha.log(f"\ndata check: {result['status']} ({result['failed']} failed, {result['warnings']} warning(s)); "
            f"reports in {out}")
    for r in results:
        if r.status == "fail":
            gha.error(r.message, title=f"data-check: {r.name}" + (f" ({r.column})" if r.column else ""))
        elif r.status == "warn":
            gha.warning(r.message)
    return result


@click.command("data-check")
@options.contract
@options.tracking_uri
@options.data(None, "CSV to check  [default: data.train from the contract]")
@options.path_option("--reference", envvar="GITOPS_ML_REFERENCE", default=None,
                     help="CSV to measure drift against  [default: the champion's reference data in MLflow]")
@click.option("--no-drift", is_flag=True, envvar="GITOPS_ML_NO_DRIFT", help="skip the drift check")
@click.option("--fail-on-drift", is_flag=True, envvar="GITOPS_ML_FAIL_ON_DRIFT",
              help="fail (not just warn) when the share of drifted columns reaches drift.max_drifted_share")
@options.out("reports/data-check", "folder for result.json, summary.md and drift.html")
def cli(**given) -> int:
    """Check a dataset against the contract (types, ranges, categories, missing values, duplicates,
    target) and for drift against reference data. Relative paths are relative to the repository root.
    """
    contract, inputs = options.build(Inputs, given)
    result = run(contract, inputs)
    if result["status"] == "fail":
        gha.log(f"{result['failed']} data check(s) failed; see the messages above")
        return 1  # the data broke the contract (a usage or contract error exits 2)
    return 0

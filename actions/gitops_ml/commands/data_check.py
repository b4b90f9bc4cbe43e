"""`gitops-ml data-check`: check a dataset against the contract, and for drift, before training on it.

Writes `result.json` (every check and the drift decision; deterministic, because the DVC
`validate` stage declares it as an output), `summary.md` (the same as a Markdown table, also
added to the job summary) and `drift.html` (Evidently's report) when drift was measured.
Failed checks exit 1 after the reports are written; warnings do not.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gitops_ml.commands import options
from gitops_ml.core.checks import CheckResult, overall
from gitops_ml.core.contract import Contract
from gitops_ml.core.drift import DriftResult
from gitops_ml.io import csv_input, gha

if TYPE_CHECKING:
    import pandas as pd

EMOJI = {"pass": "✅", "warn": "⚠️", "fail": "❌"}


class ChecksFailed(click.ClickException):
    """Exit 1: the data broke the contract (a usage or contract error exits 2)."""

    exit_code = 1


def _resolve(root: Path, path: Path) -> Path:
    return path if path.is_absolute() else root / path


def _shown(path: Path, root: Path) -> str:
    """A path as the report shows it: relative to the repository when inside it, so reports are stable."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def drift_check(drift: DriftResult, fail_on_drift: bool) -> CheckResult:
    seen = f"{len(drift.drifted_columns)}/{len(drift.columns)} column(s) ({100 * drift.share:.0f}%)"
    expected = f"< {100 * drift.max_drifted_share:.0f}% of columns with p < {drift.threshold:g}"
    if not drift.drifted:
        return CheckResult("drift", None, "pass", seen, expected, f"no dataset drift ({seen} drifted)")
    return CheckResult(
        "drift", None, "fail" if fail_on_drift else "warn", seen, expected,
        f"dataset drift: {seen} drifted ({', '.join(drift.drifted_columns)}), at or over drift.max_drifted_share "
        f"{drift.max_drifted_share:g}; see drift.html, and retrain on recent data if the change is real",
    )


def _skipped(reason: str) -> CheckResult:
    return CheckResult("drift", None, "warn", "skipped", "reference data",
                       f"drift not measured: {reason}; pass --reference with a CSV to compare against, or --no-drift")


def _measure(frame: pd.DataFrame, contract: Contract, reference: Path | None, root: Path, out: Path,
             fail_on_drift: bool) -> tuple[list[CheckResult], dict | None]:
    """The drift check result(s) and the drift summary for result.json."""
    from gitops_ml.io.evidently_drift import METHOD, measure_drift

    with tempfile.TemporaryDirectory(prefix="gitops-ml-reference-") as tmp:
        if reference is None:
            from gitops_ml.io.reference import champion_reference

            champion = champion_reference(contract, Path(tmp))
            if champion.path is None:
                return [_skipped(champion.source)], None
            reference, source = champion.path, champion.source
        else:
            source = _shown(reference, root)
        reference_frame, reference_results = csv_input.check_file(reference, contract)
        if reference_frame is None:
            return [_skipped(f"the reference data {source} is unreadable: {reference_results[0].seen}")], None
        missing = [name for name in contract.data.features if name not in reference_frame or name not in frame]
        if missing:
            return [_skipped(f"feature column(s) {missing} missing from the data or the reference {source}")], None
        with gha.group(f"drift against {source}"):
            drift = measure_drift(reference_frame, frame, contract, out / "drift.html")
    summary = {"reference": source, "method": METHOD, "report": "drift.html", **drift.to_dict()}
    return [drift_check(drift, fail_on_drift)], summary


def markdown(results: list[CheckResult], data: str, drift: dict | None) -> str:
    status = overall(results)
    counts = {name: sum(result.status == name for result in results) for name in EMOJI}
    lines = [
        f"### {EMOJI[status]} Data check: {status} — `{data}`",
        "",
        f"{counts['pass']} passed, {counts['warn']} warning(s), {counts['fail']} failed.",
        "",
        "| check | column | status | seen | expected |",
        "| --- | --- | --- | --- | --- |",
    ]
    for result in results:
        cells = [result.name, result.column or "", f"{EMOJI[result.status]} {result.status}", result.seen,
                 result.expected]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    problems = [result for result in results if result.status != "pass"]
    if problems:
        lines += ["", "**What to do**", ""] + [f"- {EMOJI[r.status]} {r.message}" for r in problems]
    if drift:
        lines += ["", f"**Drift** against {drift['reference']} ({drift['method']}):", "",
                  "| column | p-value | drifted |", "| --- | --- | --- |"]
        lines += [f"| {c['column']} | {c['score']} | {'yes' if c['drifted'] else 'no'} |" for c in drift["columns"]]
    return "\n".join(lines) + "\n"


def text_table(results: list[CheckResult]) -> str:
    rows = [("check", "column", "status", "seen", "expected")]
    rows += [(r.name, r.column or "-", r.status.upper(), r.seen, r.expected) for r in results]
    widths = [min(max(len(row[i]) for row in rows), 40) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4]
                     for row in rows)


def run(contract: Contract, root: Path, data: Path, reference: Path | None, drift: bool, fail_on_drift: bool,
        out: Path) -> dict:
    frame, results = csv_input.check_file(data, contract)
    (out / "drift.html").unlink(missing_ok=True)  # never leave an older run's report next to this one
    drift_summary = None
    if drift and contract.drift.check_on_data_check and frame is not None:
        drift_results, drift_summary = _measure(frame, contract, reference, root, out, fail_on_drift)
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
    gha.write_text(out / "result.json", json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    summary = markdown(results, shown, drift_summary)
    gha.write_text(out / "summary.md", summary)
    gha.add_summary(summary)
    print(text_table(results))
    print(f"\ndata check: {result['status']} ({result['failed']} failed, {result['warnings']} warning(s)); "
          f"reports in {out}")
    for r in results:
        if r.status == "fail":
            gha.error(r.message, title=f"data-check: {r.name}" + (f" ({r.column})" if r.column else ""))
        elif r.status == "warn":
            gha.warning(r.message)
    gha.set_output("status", result["status"])
    gha.set_output("failed", result["failed"])
    gha.set_output("report", out.resolve())  # absolute: later steps may run in another folder
    return result


@click.command("data-check")
@options.contract_option
@click.option("--data", type=click.Path(path_type=Path), envvar="GITOPS_ML_DATA", default=None,
              help="CSV to check  [default: data.train from the contract]")
@click.option("--reference", type=click.Path(path_type=Path), envvar="GITOPS_ML_REFERENCE", default=None,
              help="CSV to measure drift against  [default: the champion's reference data in MLflow]")
@click.option("--no-drift", is_flag=True, envvar="GITOPS_ML_NO_DRIFT", help="skip the drift check")
@click.option("--fail-on-drift", is_flag=True, envvar="GITOPS_ML_FAIL_ON_DRIFT",
              help="fail (not just warn) when the share of drifted columns reaches drift.max_drifted_share")
@click.option("--out", type=click.Path(path_type=Path), envvar="GITOPS_ML_OUT", default=Path("reports/data-check"),
              help="folder for result.json, summary.md and drift.html")
def cli(contract_path: Path, data: Path | None, reference: Path | None, no_drift: bool, fail_on_drift: bool,
        out: Path) -> None:
    """Check a dataset against the contract (types, ranges, categories, missing values, duplicates,
    target) and for drift against reference data. Relative paths are relative to the repository root.
    """
    contract, root = options.load(contract_path)
    data = _resolve(root, data or Path(contract.data.train))
    result = run(contract, root, data, reference and _resolve(root, reference), not no_drift, fail_on_drift,
                 _resolve(root, out))
    if result["status"] == "fail":
        raise ChecksFailed(f"{result['failed']} data check(s) failed; see the messages above")

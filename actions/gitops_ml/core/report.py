"""Markdown for people: the pull request's comparison comment and the challenger's model card.

Pure functions of the evaluations and the decision, so a report can be rendered (and tested)
without MLflow or GitHub. The hidden marker lets the compare action find and update its own comment.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from gitops_ml.core.checks import CheckResult, overall
from gitops_ml.core.contract import Contract
from gitops_ml.core.policy import Decision, Scored

MARKER = "<!-- gitops-ml:compare -->"
VERDICT = {"promote": "✅ **promote**", "reject": "❌ **reject**"}


@dataclass(frozen=True)
class Side:
    """One registered model version in a comparison."""

    version: str
    evaluation: Scored
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return f"{value:.4f}"


def _signed(value: float | None) -> str:
    return "—" if value is None else "NaN" if math.isnan(value) else f"{value:+.4f}"


def _ci(ci) -> str:
    return "—" if ci is None else f"[{_signed(ci.low)}, {_signed(ci.high)}]"


def _mark(passed: bool) -> str:
    return "✅ pass" if passed else "❌ fail"


def _metric_rows(contract: Contract, decision: Decision, challenger: Side, champion: Side | None, ci) -> list[str]:
    rows, ruled = [], set()
    for rule in decision.rules:
        show_ci = rule.metric == decision.primary and rule.rule in ("primary", "bootstrap")
        new, old = rule.challenger, rule.champion
        if rule.rule == "bootstrap":
            new = challenger.evaluation.metrics.get(rule.metric)
            old = champion.evaluation.metrics.get(rule.metric) if champion else None
        ruled.add(rule.metric)
        rows.append(
            f"| {rule.metric} | {_num(old)} | {_num(new)} | {_signed(rule.delta)} | {_ci(ci) if show_ci else '—'} "
            f"| {rule.rule}: {rule.detail} | {_mark(rule.passed)} |"
        )
    for metric in contract.metric_names:
        if metric not in ruled:
            new = challenger.evaluation.metrics.get(metric)
            old = champion.evaluation.metrics.get(metric) if champion else None
            rows.append(f"| {metric} | {_num(old)} | {_num(new)} | — | — | reported only | — |")
    return rows


def _undefined_lines(evaluation: Scored) -> list[str]:
    """Why each NaN metric is NaN (overall and per group), as list items; [] when all are defined."""
    lines = [f"- `{metric}`: {reason}" for metric, reason in getattr(evaluation, "undefined", {}).items()]
    for group, reasons in getattr(evaluation, "slice_undefined", {}).items():
        lines += [f"- `{metric}` for group '{group}': {reason}" for metric, reason in reasons.items()]
    return lines


def _group_rows(contract: Contract, challenger: Side, champion: Side | None) -> list[str]:
    metrics = list(dict.fromkeys([contract.metrics.primary, *([contract.promotion.fairness.metric]
                                                                if contract.promotion.fairness else [])]))
    new_slices, old_slices = challenger.evaluation.slices, champion.evaluation.slices if champion else {}
    if not new_slices:
        return []
    header = " | ".join(f"champion {m} | challenger {m}" for m in metrics)
    lines = [f"| {contract.data.sensitive_attribute} | rows | {header} |", "|---" * (2 + 2 * len(metrics)) + "|"]
    for group, row in new_slices.items():
        cells = " | ".join(f"{_num(old_slices.get(group, {}).get(m))} | {_num(row.get(m))}" for m in metrics)
        lines.append(f"| {group} | {int(row.get('rows', 0))} | {cells} |")
    return lines


def comparison_markdown(
    contract: Contract, decision: Decision, challenger: Side, champion: Side | None, ci, data: str, reproduce: str
) -> str:
    """The sticky PR comment (and compare.md): verdict, rule table, groups, how to reproduce."""
    name = contract.registry.model_name
    against = f"champion version {champion.version}" if champion else "no champion (first promotion)"
    lines = [
        MARKER,
        f"## gitops-ml compare: {VERDICT[decision.verdict]}",
        "",
        (f"Challenger **{name} version {challenger.version}** against {against}, "
         f"on `{data}` ({challenger.evaluation.rows} rows)."),
        "",
    ]
    if decision.failed:
        lines += ["Failed: " + "; ".join(f"{r.rule} {r.metric} ({r.detail})" for r in decision.failed), ""]
    lines += [f"> {note}" for note in decision.notes]
    lines += ["", "| metric | champion | challenger | delta | CI | rule | result |", "|---|---|---|---|---|---|---|"]
    lines += _metric_rows(contract, decision, challenger, champion, ci)
    groups = _group_rows(contract, challenger, champion)
    if groups:
        lines += ["", f"### By {contract.data.sensitive_attribute}", "", *groups]
    undefined = _undefined_lines(challenger.evaluation)
    if undefined:
        lines += ["", "Not computed on the challenger (NaN):", "", *undefined]
    lines += [
        "",
        "<details><summary>Reproduce</summary>",
        "",
        "```sh",
        reproduce,
        "```",
        "",
        "Delta is signed so that positive means the challenger is better, also for lower-is-better metrics.",
        "</details>",
    ]
    return "\n".join(lines) + "\n"


def model_card(contract: Contract, challenger: Side, decision: Decision | None, champion: Side | None) -> str:
    """The challenger's model card: provenance, parameters, metrics, groups, verdict, intended use."""
    tags, evaluation = challenger.tags, challenger.evaluation
    params = json.loads(tags["params"]) if tags.get("params") else {}
    lines = [
        f"# Model card: {contract.registry.model_name} version {challenger.version}",
        "",
        f"- Task: {contract.model.task}, target `{contract.data.target}`",
        f"- Run: `{challenger.run_id or 'unknown'}`",
        f"- Git commit: `{tags.get('git_sha', 'unknown')}`",
        f"- Training data: `{tags.get('data_path', contract.data.train)}` (hash `{tags.get('data_hash', 'unknown')}`)",
        "",
        "## Intended use",
        "",
        contract.model.intended_use or "Not stated in the contract.",
        "",
        "## Limitations",
        "",
        contract.model.limitations or "Not stated in the contract.",
        "",
        "## Parameters",
        "",
    ]
    lines += [f"- `{key}`: `{value}`" for key, value in sorted(params.items())] or ["Not recorded."]
    lines += ["", f"## Metrics on held-out data ({evaluation.rows} rows)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {metric} | {_num(value)} |" for metric, value in evaluation.metrics.items()]
    lines += [f"| latency p95 (ms) | {_num(evaluation.latency_p95_ms)} |"]
    if evaluation.slices:
        metrics = list(next(iter(evaluation.slices.values())))
        lines += ["", f"## Metrics by {contract.data.sensitive_attribute}", "",
                  "| group | " + " | ".join(metrics) + " |", "|---" * (1 + len(metrics)) + "|"]
        lines += [f"| {group} | " + " | ".join(str(int(row[m])) if m == "rows" else _num(row.get(m)) for m in metrics)
                  + " |" for group, row in evaluation.slices.items()]
    per_class = getattr(evaluation, "per_class", {})
    if per_class:
        lines += ["", f"## By class of `{contract.data.target}`", "", "| class | precision | recall | f1 | rows |",
                  "|---|---|---|---|---|"]
        lines += [f"| {label} | {_num(row['precision'])} | {_num(row['recall'])} | {_num(row['f1'])} "
                  f"| {int(row['support'])} |" for label, row in per_class.items()]
    undefined = _undefined_lines(evaluation)
    if undefined:
        lines += ["", "Not computed (NaN):", "", *undefined]
    if decision is not None:
        against = f"champion version {champion.version}" if champion else "no champion (first promotion)"
        lines += ["", "## Comparison", "", f"Verdict: {VERDICT[decision.verdict]} against {against}."]
        lines += [f"- failed {r.rule} {r.metric}: {r.detail}" for r in decision.failed]
    return "\n".join(lines) + "\n"


# --- job summaries of the other verbs ------------------------------------------------------------


def train_summary(result: dict) -> str:
    table = "\n".join(f"| {name} | {value:.4f} |" for name, value in result["metrics"].items())
    return (
        f"### Trained {result['model_name']} version {result['version']}\n\n"
        f"git `{result['git_sha']}` · data `{result['data_hash']}` · run `{result['run_id']}`\n\n"
        f"| metric | held-out |\n| --- | --- |\n{table}\n"
    )


CHECK_EMOJI = {"pass": "✅", "warn": "⚠️", "fail": "❌"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def data_check_markdown(results: list[CheckResult], data: str, drift: dict | None) -> str:
    """The data check as a Markdown table, what to do about each problem, and the drift per column."""
    status = overall(results)
    counts = {name: sum(result.status == name for result in results) for name in CHECK_EMOJI}
    lines = [
        f"### {CHECK_EMOJI[status]} Data check: {status} — `{data}`",
        "",
        f"{counts['pass']} passed, {counts['warn']} warning(s), {counts['fail']} failed.",
        "",
        "| check | column | status | seen | expected |",
        "| --- | --- | --- | --- | --- |",
    ]
    for result in results:
        cells = [result.name, result.column or "", f"{CHECK_EMOJI[result.status]} {result.status}", result.seen,
                 result.expected]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    problems = [result for result in results if result.status != "pass"]
    if problems:
        lines += ["", "**What to do**", ""] + [f"- {CHECK_EMOJI[r.status]} {r.message}" for r in problems]
    if drift:
        lines += ["", f"**Drift** against {drift['reference']} ({drift['method']}):", "",
                  "| column | p-value | drifted |", "| --- | --- | --- |"]
        lines += [f"| {_cell(c['column'])} | {c['score']} | {'yes' if c['drifted'] else 'no'} |"
                  for c in drift["columns"]]
    return "\n".join(lines) + "\n"


def data_check_table(results: list[CheckResult]) -> str:
    """The same checks as aligned plain text, for the terminal."""
    rows = [("check", "column", "status", "seen", "expected")]
    rows += [(r.name, r.column or "-", r.status.upper(), r.seen, r.expected) for r in results]
    widths = [min(max(len(row[i]) for row in rows), 40) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4]
                     for row in rows)


def promotion_summary(model: str, version: str, replaced: str | None, audit: dict[str, str | None]) -> str:
    was = f" (was {replaced}, now previous-champion)" if replaced else " (first champion)"
    return (f"### Promoted {model} version {version} to `champion`{was}\n\n"
            + "\n".join(f"- {key}: `{value}`" for key, value in audit.items() if value is not None))


def rollback_summary(model: str, version: str, was: str, by: str, reason: str) -> str:
    return f"### Rolled back {model} to version {version} (was {was})\n\nby `{by}`: {reason}"


def verify_markdown(result: dict) -> str:
    """The merge job's summary: each pull request, what was verified or why not."""
    lines = [f"## gitops-ml verify: {result['model_name']}", "",
             f"Holdout: `{result['holdout']}`; {len(result['commits'])} new commit(s).", ""]
    if not result["pulls"]:
        return "\n".join([*lines, "No merged pull request to verify."]) + "\n"
    lines += ["| pull request | candidate | verdict | production version | refused |", "|---|---|---|---|---|"]
    for pull in result["pulls"]:
        pr = f"#{pull['pr']}" if pull.get("pr") else "(local)"
        lines.append(f"| {pr} | {pull.get('candidate') or '-'} | {pull.get('verdict') or '-'} | "
                     f"{pull.get('version') or '-'} | {_cell(pull.get('refused') or '')} |")
    return "\n".join(lines) + "\n"

"""Retraining pull requests and the live-performance alert: what the bot does, decided from what it sees.

Behaves like the dependency bots people trust:
- one pull request per model, from one branch, updated in place (never a duplicate);
- a run on the same data changes nothing;
- a pull request closed without merging means "declined": it is not reopened (nor a new one opened)
  until the data materially changes, i.e. has a new hash; the body says so;
- commits a person added to the branch are kept: the bot then adds its commit on top instead of
  rebuilding the branch from the base.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MARKER = "gitops-ml:retrain"
ALERT_MARKER = "gitops-ml:alert"
_HASH = re.compile(rf"<!-- {MARKER} model=(?P<model>\S+) data=(?P<hash>[0-9a-f]+) -->")

CREATE, UPDATE, DECLINED, NOTHING = "create", "update", "declined", "nothing"


def branch_name(model: str, prefix: str = "gitops-ml/retrain") -> str:
    return f"{prefix}/{model}"


def marker(model: str, data_hash: str) -> str:
    return f"<!-- {MARKER} model={model} data={data_hash} -->"


def data_hash_of(body: str | None) -> str | None:
    """The data hash a retraining PR's body was opened or last updated for."""
    match = _HASH.search(body or "")
    return match.group("hash") if match else None


@dataclass(frozen=True)
class Plan:
    action: str  # CREATE, UPDATE, DECLINED or NOTHING
    reason: str
    pull: Mapping | None = None  # the PR to update, or the declined one
    declined: Mapping | None = None  # an earlier PR closed without merge for other data (named in the body)


def plan_pull(retrain: bool, data_hash: str | None, pulls: Sequence[Mapping]) -> Plan:
    """What to do with the retraining PR, given whether retraining is due, the new labelled data's hash and the
    PRs ever opened from the model's branch (any state, any order)."""
    if not retrain:
        return Plan(NOTHING, "no drift and no live performance drop: no retraining pull request")
    if not data_hash:
        return Plan(NOTHING, "retraining is due but there is no new labelled data to add (no labels yet: send them "
                             "to POST /feedback, or put the target column in the current data)")
    ordered = sorted(pulls, key=lambda p: int(p["number"]), reverse=True)
    open_ = [p for p in ordered if p.get("state") == "open"]
    if open_:
        return Plan(UPDATE, f"updating #{open_[0]['number']} in place", open_[0])
    closed = [p for p in ordered if p.get("state") == "closed" and not p.get("merged_at")]
    latest = ordered[0] if ordered else None
    if latest is not None and latest in closed and data_hash_of(latest.get("body")) == data_hash:
        return Plan(DECLINED, f"#{latest['number']} was closed without merging for this same data ({data_hash}); "
                              "it is not reopened until the data changes", latest)
    declined = latest if latest is not None and latest in closed else None
    return Plan(CREATE, "opening a retraining pull request", None, declined)


def pull_title(model: str, result: Mapping) -> str:
    data = result.get("data_drift") or {}
    columns = data.get("drifted_columns") or []
    what = f"drift in {len(columns)} column(s)" if columns else (
        "prediction drift" if (result.get("prediction_drift") or {}).get("drifted") else "live performance drop")
    return f"Retrain {model}: {what}"


def pull_body(model: str, data_hash: str, rows: int, data_path: str, summary: str,
              declined: Mapping | None = None) -> str:
    lines = [
        f"gitops-ml found that production data has moved away from what the `champion` of **{model}** was "
        f"trained on. This pull request adds **{rows}** new labelled row(s) to `{data_path}` (through DVC; "
        "the data is on the DVC remote) so that this PR's checks retrain the model and compare it with the "
        "champion, like any other pull request.",
        "",
        summary.strip(),
        "",
        "---",
        f"New data hash: `{data_hash}`.",
        "",
        "How this bot behaves: there is one retraining pull request per model, updated in place by later runs; "
        "a run on the same data changes nothing; **closing this pull request without merging declines it**: "
        "it is not reopened (and no new one is opened) until the data materially changes (a new data hash). "
        "Commits you add to this branch are kept: later runs add their commit on top and never force-push "
        "them away.",
    ]
    if declined is not None:
        lines += ["", f"An earlier retraining pull request, #{declined['number']}, was closed without merging for "
                      f"other data (`{data_hash_of(declined.get('body')) or 'unknown'}`); this one is for new data."]
    lines += ["", marker(model, data_hash)]
    return "\n".join(lines) + "\n"


# -- the live performance alert ------------------------------------------------------------------

OPEN_ALERT, UPDATE_ALERT, CLOSE_ALERT, KEEP_ALERT = "open", "update", "close", "keep"


def alert_marker(model: str) -> str:
    return f"<!-- {ALERT_MARKER} model={model} -->"


def plan_alert(model: str, alert: bool, judged: bool, issues: Sequence[Mapping]) -> tuple[str, Mapping | None]:
    """One open issue per model while live performance is below the floor; closed (with a comment) once it is
    judged again and recovered. Not judged (too few labels): left as it is."""
    ours = [i for i in issues if alert_marker(model) in (i.get("body") or "") and i.get("state", "open") == "open"]
    current = min(ours, key=lambda i: int(i["number"])) if ours else None
    if alert:
        return (UPDATE_ALERT, current) if current else (OPEN_ALERT, None)
    if judged and current is not None:
        return CLOSE_ALERT, current
    return KEEP_ALERT, current


def alert_body(model: str, performance: Mapping, summary: str) -> str:
    problems = "\n".join(f"- {p}" for p in performance.get("problems", []))
    return (f"Live performance of **{model}** is below the floor set in `gitops-ml.yaml` (`promotion.floors`), "
            f"measured on {performance.get('labels', 0)} labelled production row(s):\n\n{problems}\n\n"
            f"{summary.strip()}\n\nThis issue is updated by each scheduled drift run while the problem lasts and "
            f"closed with a comment when performance recovers.\n\n{alert_marker(model)}\n")

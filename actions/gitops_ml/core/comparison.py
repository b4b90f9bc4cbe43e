"""A finished comparison of challenger and champion, and what is recorded about it.

Pure: the compare verb measures (loads both models, evaluates them, bootstraps) and decides with
`core.policy.decide`; this turns the outcome into the JSON result and the version tags, so both
have one definition that tests can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitops_ml.core.bootstrap import Interval
from gitops_ml.core.evaluation import Evaluation
from gitops_ml.core.policy import Decision


@dataclass(frozen=True)
class Comparison:
    model_name: str
    challenger_version: str
    challenger_run_id: str | None
    challenger: Evaluation
    champion_version: str | None  # None: no champion yet
    champion_run_id: str | None
    champion: Evaluation | None
    ci: Interval | None
    decision: Decision
    data: str  # what both were evaluated on, as shown in reports
    compared_at: str

    @property
    def verdict(self) -> str:
        return self.decision.verdict

    @property
    def against(self) -> str:
        return f"champion version {self.champion_version}" if self.champion_version else "no champion (first promotion)"

    def to_dict(self) -> dict[str, Any]:
        ci = self.ci
        return {
            "model_name": self.model_name,
            "verdict": self.verdict,
            "challenger": {"version": self.challenger_version, "run_id": self.challenger_run_id,
                           **self.challenger.to_dict()},
            "champion": None if self.champion is None else {
                "version": self.champion_version, "run_id": self.champion_run_id, **self.champion.to_dict()},
            "ci": None if ci is None else {"delta": ci.delta, "low": ci.low, "high": ci.high,
                                           "confidence": ci.confidence, "samples": ci.samples},
            "decision": self.decision.to_dict(),
            "data": self.data,
            "compared_at": self.compared_at,
        }

    def tags(self, sha: str | None = None, pr_number: str | None = None) -> dict[str, str | None]:
        """The comparison as tags on the challenger's version: informative, for people and lineage."""
        ci = self.ci
        return {
            "compare.verdict": self.verdict,
            "compare.champion_version": self.champion_version or "none",
            "compare.primary_metric": self.decision.primary,
            "compare.primary_delta": None if ci is None else f"{ci.delta:.6f}",
            "compare.ci": None if ci is None else f"[{ci.low:.6f}, {ci.high:.6f}]",
            "compare.data": self.data,
            "compare.sha": sha,
            "compare.pr_number": pr_number,
            "compare.at": self.compared_at,
        }

    def status_description(self) -> str:
        """The commit status line (GitHub keeps 140 characters)."""
        failed = ", ".join(f"{r.rule} {r.metric}" for r in self.decision.failed)
        return (f"{self.verdict}: version {self.challenger_version} vs {self.against}"
                + (f" (failed: {failed})" if failed else ""))

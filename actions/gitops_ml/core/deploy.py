"""The deploy plan and its result, as pure functions of what the proxy and the engine report.

A `docker` environment is one proxy backend with two slots (blue and green by default). The live
slot serves; a deploy puts the new container in the other one, smoke-tests it, switches the proxy
to it, drains the live slot and retires its container. Which slot is live is the proxy's word
(its admin state), never a guess from container names.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from gitops_ml.core.image import LABEL_PREFIX as LABEL

MAX_REASON = 2000  # characters of a failure reason kept in reports and tags


class DeployFailed(Exception):
    """A deploy step failed; `step` names it, the message says why."""

    def __init__(self, step: str, reason: str):
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass(frozen=True)
class Slot:
    """A proxy server slot as the proxy reports it."""

    name: str
    admin: Literal["ready", "drain", "maint"]
    status: str  # the proxy's operational status, e.g. UP, DOWN, MAINT, DRAIN, "no check"
    address: str  # host:port the slot points at
    sessions: int = 0

    @property
    def serving(self) -> bool:
        return self.admin != "maint" and not self.status.startswith(("DOWN", "MAINT"))


@dataclass(frozen=True)
class Running:
    """A container gitops-ml started for this model and environment (found by its labels)."""

    id: str
    name: str
    slot: str | None
    version: str | None
    image: str | None


@dataclass(frozen=True)
class Plan:
    slot: str  # where the new container goes
    live: str | None  # the slot serving now (None on a first deploy)
    stale: tuple[Running, ...]  # containers in the target slot: not serving, removed first
    retire: tuple[Running, ...]  # every other container of this environment: retired after the switch


def plan(slots: list[Slot], running: list[Running], names: tuple[str, str]) -> Plan:
    """Which slot to deploy into, given the proxy's slots and the environment's containers."""
    by_name = {slot.name: slot for slot in slots}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise DeployFailed("inspect", f"the proxy backend has no server(s) {missing} (it has {sorted(by_name)}); "
                                      "its configuration must declare both slots (deploy/docker/haproxy.cfg)")
    enabled = [by_name[name] for name in names if by_name[name].admin != "maint"]
    if len(enabled) > 1:
        serving = [slot for slot in enabled if slot.serving]
        enabled = serving if len(serving) == 1 else enabled
    if len(enabled) > 1:
        raise DeployFailed("inspect", "both slots are enabled in the proxy ("
                           + ", ".join(f"{s.name} {s.status} at {s.address}" for s in enabled)
                           + "): an earlier deploy was interrupted. Put the one that should not serve in "
                           "maintenance (`set server BACKEND/SLOT state maint` on the runtime API), then deploy again")
    live = enabled[0].name if enabled else None
    target = names[1] if live == names[0] else names[0]
    return Plan(slot=target, live=live, stale=tuple(r for r in running if r.slot == target),
                retire=tuple(r for r in running if r.slot != target))


def drained(sessions: int, waited_s: float, timeout_s: float) -> bool:
    """Stop waiting for in-flight requests: none left, or the drain timeout has passed."""
    return sessions <= 0 or waited_s >= timeout_s


def container_name(model_name: str, environment: str, slot: str) -> str:
    """`<model>-<environment>-<slot>`, reduced to the characters Docker allows in a name."""
    raw = f"{model_name}-{environment}-{slot}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-._")


def container_labels(model_name: str, environment: str, slot: str, version: str, image: str) -> dict[str, str]:
    return {f"{LABEL}.model": model_name, f"{LABEL}.environment": environment, f"{LABEL}.slot": slot,
            f"{LABEL}.version": version, f"{LABEL}.image": image}


def selector(model_name: str, environment: str) -> dict[str, str]:
    """The labels that find every container of one model in one environment."""
    return {f"{LABEL}.model": model_name, f"{LABEL}.environment": environment}


def running_from_labels(container_id: str, name: str, labels: dict[str, str]) -> Running:
    return Running(container_id, name, labels.get(f"{LABEL}.slot"), labels.get(f"{LABEL}.version"),
                   labels.get(f"{LABEL}.image"))


@dataclass
class DeployResult:
    """What a deploy did, for the caller to report (exit code, GitHub deployment status, summary)."""

    status: Literal["success", "failure"]
    environment: str
    version: str
    image: str
    environment_url: str | None = None
    reason: str | None = None
    step: str | None = None  # the step that failed
    slot: str | None = None
    container: str | None = None
    replaced: list[str] = field(default_factory=list)  # containers retired (or kept, on failure)
    log_tail: str | None = None  # the new container's last log lines, on failure
    undo: list[str] = field(default_factory=list)  # what was undone after a failure
    timings_s: dict[str, float] = field(default_factory=dict)  # per step, in the order they ran
    started_at: float | None = None  # seconds since the epoch

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def short_reason(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def summary_markdown(result: DeployResult) -> str:
    """The job summary of a deploy."""
    head = "Deployed" if result.ok else "Deploy failed:"
    lines = [f"### {head} version {result.version} to `{result.environment}`", ""]
    lines += [f"- image: `{result.image}`"]
    if result.environment_url:
        lines.append(f"- url: {result.environment_url}")
    if result.slot:
        lines.append(f"- slot: `{result.slot}` (container `{result.container}`)")
    if result.timings_s:
        lines.append("- steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings_s.items()))
    if not result.ok:
        lines += ["", f"**{result.step}**: {result.reason}", ""]
        if result.undo:
            lines.append("Undone: " + "; ".join(result.undo))
        if result.log_tail:
            lines += ["", "<details><summary>the new container's last log lines</summary>", "", "```",
                      result.log_tail.rstrip(), "```", "</details>"]
    return "\n".join(lines) + "\n"

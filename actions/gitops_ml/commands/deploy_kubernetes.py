"""The kubernetes backend of `gitops-ml deploy`: one environment's overlay, the image by digest.

set image (a kustomization written by gitops-ml) → render → check every image is pinned → read
the Deployment's current revision → `kubectl apply` → `kubectl rollout status` → smoke test
(through `kubectl port-forward`, or the environment's URL) → done. A failure after apply puts back
what served before: `kubectl rollout undo --to-revision=<the revision read before>` and waits for
it, or deletes the Deployment when this deploy created it (`core.kubernetes.recovery` decides).

Nothing here moves a registry alias: the verb promotes only when the result is ok.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from gitops_ml.core.contract import Contract
from gitops_ml.core.kubernetes import (
    DeploymentState,
    ImageRef,
    Recovery,
    Stage,
    Workload,
    check_environment,
    deployment_state,
    image_kustomization,
    parse_image_ref,
    recovery,
    serving_workload,
)
from gitops_ml.io.kubectl import Kubectl, KubectlError

OVERLAYS = Path("deploy") / "kubernetes" / "overlays"


class SmokeVerdict(Protocol):
    passed: bool
    detail: str


# Given the base URL of the deployed app (e.g. http://127.0.0.1:41234), say whether it serves right.
Smoke = Callable[[str], SmokeVerdict]


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class DeployResult:
    environment: str
    target: str
    image: str
    deployment: str
    namespace: str | None
    ok: bool
    failed_stage: Stage | None  # apply | rollout | smoke
    detail: str
    recovery: str  # undo | delete | none | manual
    recovered: bool  # what served before serves again (true when nothing needed undoing)
    previous_revision: int | None
    manifest: Path  # exactly what was applied
    steps: tuple[Step, ...] = field(default=())

    @property
    def status(self) -> str:
        if self.ok:
            return "deployed"
        return "rolled back" if self.recovered else "failed, and the previous state was not restored"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "manifest": str(self.manifest), "status": self.status}


def overlays(root: Path) -> list[str]:
    folder = root / OVERLAYS
    return sorted(p.name for p in folder.iterdir() if (p / "kustomization.yaml").is_file()) if folder.is_dir() else []


def render(root: Path, environment: str, image: ImageRef, out: Path, kubectl: Kubectl) -> tuple[Path, Workload]:
    """Write the image-setting kustomization and the rendered manifest under `out`; check the manifest."""
    wrapper = out / "kustomize"
    wrapper.mkdir(parents=True, exist_ok=True)
    # kustomize refuses absolute resource paths: point at the overlay relative to the wrapper.
    overlay = os.path.relpath(root / OVERLAYS / environment, wrapper)
    (wrapper / "kustomization.yaml").write_text(yaml.safe_dump(image_kustomization(overlay, image), sort_keys=False))
    text = kubectl.kustomize(wrapper)
    workload = serving_workload([doc for doc in yaml.safe_load_all(text) if doc], image)
    manifest = out / "manifest.yaml"
    manifest.write_text(text)
    return manifest, workload


def _state(obj: dict[str, Any] | None) -> DeploymentState | None:
    return None if obj is None else deployment_state(obj)


def deploy_kubernetes(contract: Contract, environment: str, image_digest_ref: str, *, root: Path, out: Path,
                      smoke: Smoke, url: str | None = None, kubectl: Kubectl | None = None,
                      rollout_timeout_s: float = 600.0) -> DeployResult:
    """Deploy `image_digest_ref` to `environment`; on any failure after apply, put back what served before.

    Bad input (an image without digest, an unknown environment, a manifest with unpinned images)
    raises a `GitopsMLError` before the cluster is touched. `url` is the environment's address for
    the smoke test; without it the test goes through `kubectl port-forward` to the Service.
    """
    kubectl = kubectl or Kubectl()
    image = parse_image_ref(image_digest_ref)
    check_environment(environment, overlays(root))
    manifest, workload = render(root, environment, image, out, kubectl)
    name, namespace = workload.name, workload.namespace
    before = _state(kubectl.deployment(name, namespace))
    steps: list[Step] = [Step("render", True, f"{manifest}: {name} runs {image}")]

    def finish(stage: Stage | None, detail: str, plan: Recovery | None = None) -> DeployResult:
        recovered = True
        if plan is not None:
            steps.append(Step("recovery", True, f"{plan.action}: {plan.reason}"))
            recovered = _recover(plan, name, namespace, kubectl, rollout_timeout_s, steps)
        result = DeployResult(environment, "kubernetes", str(image), name, namespace, stage is None, stage, detail,
                              plan.action if plan else "none", recovered, before.revision if before else None,
                              manifest, tuple(steps))
        print(f"deploy {environment}: {result.status} ({detail})")
        return result

    applied = kubectl.apply(manifest)
    steps.append(Step("apply", applied.ok, applied.output))
    if not applied.ok:
        try:
            after, known = _state(kubectl.deployment(name, namespace)), True
        except KubectlError:
            after, known = None, False
        plan = recovery("apply", image, before, after, known)
        return finish("apply", f"kubectl apply failed: {applied.output}", plan)

    rolled = kubectl.rollout_status(name, namespace, rollout_timeout_s)
    steps.append(Step("rollout", rolled.ok, rolled.output))
    if not rolled.ok:
        return finish("rollout", f"rollout did not complete: {rolled.output}", recovery("rollout", image, before, None))

    verdict = _smoke(smoke, url, workload, kubectl, contract.deploy.smoke_timeout_s)
    steps.append(Step("smoke", verdict.passed, verdict.detail))
    if not verdict.passed:
        return finish("smoke", f"smoke test failed: {verdict.detail}", recovery("smoke", image, before, None))
    return finish(None, f"{name} runs {image}")


@dataclass(frozen=True)
class _Verdict:
    passed: bool
    detail: str


def _smoke(smoke: Smoke, url: str | None, workload: Workload, kubectl: Kubectl, timeout_s: float) -> SmokeVerdict:
    """Run the smoke test; any error on the way (port-forward, connection, the test itself) fails it."""
    try:
        if url:
            return smoke(url.rstrip("/"))
        if workload.service is None:
            return _Verdict(False, f"no Service selects the pods of {workload.name} and no environment URL was "
                                   "given: nothing to smoke-test through")
        with kubectl.port_forward(workload.service, workload.service_port, workload.namespace, timeout_s) as base:
            return smoke(base)
    except Exception as error:  # noqa: BLE001 - fail closed: an unverified model must not stay
        return _Verdict(False, f"{type(error).__name__}: {error}")


def _recover(plan: Recovery, name: str, namespace: str | None, kubectl: Kubectl, timeout_s: float,
             steps: list[Step]) -> bool:
    if plan.action in ("none", "manual"):
        return plan.action == "none"
    if plan.action == "delete":
        deleted = kubectl.delete_deployment(name, namespace)
        steps.append(Step("delete", deleted.ok, deleted.output))
        return deleted.ok
    undone = kubectl.rollout_undo(name, namespace, plan.revision)
    steps.append(Step("undo", undone.ok, undone.output))
    if not undone.ok:
        return False
    back = kubectl.rollout_status(name, namespace, timeout_s)
    steps.append(Step("rollout after undo", back.ok, back.output))
    return back.ok

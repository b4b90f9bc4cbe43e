"""The kubernetes deploy target's decisions, as pure functions of data.

- which image is deployed: a reference by digest, never a tag (`parse_image_ref`);
- how the overlay gets that image: a kustomization that wraps it and sets the image, the same
  `images:` entry `kustomize edit set image` writes, without touching the repository's files
  (`image_kustomization`);
- whether a rendered manifest may be applied: every container image pinned by digest, the
  placeholder gone, exactly one Deployment serving the image (`serving_workload`);
- what to do when a step fails: return to the revision that served before, remove a Deployment
  this deploy created, or nothing (`recovery`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from gitops_ml.errors import GitopsMLError

# The image name in the base Deployment; deploy replaces it. A pod that somehow runs it fails to
# pull with a name that says what went wrong.
PLACEHOLDER_IMAGE = "set-by-gitops-ml-deploy"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod", "CronJob"}
ENVIRONMENT = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

# Docker's reference grammar: [host[:port]/]path[:tag][@digest], path components lowercase.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)"
_IMAGE_REF = re.compile(
    rf"^(?P<name>{_HOST}?{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>[\w][\w.-]{{0,127}}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


class KubernetesDeployError(GitopsMLError):
    """The deploy cannot start: a bad image reference, environment or rendered manifest."""


@dataclass(frozen=True)
class ImageRef:
    """An image pinned by content: `name@sha256:...`."""

    name: str
    digest: str

    def __str__(self) -> str:
        return f"{self.name}@{self.digest}"


def parse_image_ref(ref: str) -> ImageRef:
    """`registry/name@sha256:<64 hex>`; a tag next to the digest is dropped (the digest decides)."""
    match = _IMAGE_REF.fullmatch(ref.strip())
    if not match:
        raise KubernetesDeployError(
            f"image reference {ref!r} is not valid: expected <registry>/<name>@sha256:<64 hex digits>, "
            "as printed by `gitops-ml build-image` (the digest the registry returned on push)")
    if not match["digest"]:
        raise KubernetesDeployError(
            f"image reference {ref!r} has no digest: a tag can be moved after review, so deploy only takes "
            "<registry>/<name>@sha256:<digest>; pass the digest the push returned")
    return ImageRef(match["name"], match["digest"])


def is_pinned(image: str) -> bool:
    """True when `image` names its content by digest."""
    match = _IMAGE_REF.fullmatch(image)
    return bool(match and match["digest"])


def check_environment(environment: str, available: list[str]) -> None:
    if not ENVIRONMENT.fullmatch(environment):
        raise KubernetesDeployError(
            f"environment {environment!r} is not a valid name: use lowercase letters, digits and dashes "
            f"(one of the overlays: {', '.join(available) or 'none found'})")
    if environment not in available:
        raise KubernetesDeployError(
            f"environment {environment!r} has no overlay under deploy/kubernetes/overlays/; available: "
            f"{', '.join(available) or 'none'}. Add overlays/{environment}/kustomization.yaml or pick one of those")


def image_kustomization(overlay: str, image: ImageRef) -> dict[str, Any]:
    """A kustomization that renders `overlay` (a path relative to it) with the image set by digest."""
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [overlay],
        "images": [{"name": PLACEHOLDER_IMAGE, "newName": image.name, "digest": image.digest}],
    }


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "Pod":
        return spec
    if doc.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def container_images(doc: dict[str, Any]) -> list[str]:
    """Every image a workload runs: init, regular and ephemeral containers."""
    pod = _pod_spec(doc)
    groups = (pod.get(key) or [] for key in ("initContainers", "containers", "ephemeralContainers"))
    return [container.get("image", "") for group in groups for container in group]


@dataclass(frozen=True)
class Workload:
    """The Deployment that serves the model, as the rendered manifest declares it."""

    name: str
    namespace: str | None
    service: str | None  # the Service selecting its pods, and its port: what port-forward reaches
    service_port: int | None


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def serving_workload(docs: list[dict[str, Any]], image: ImageRef) -> Workload:
    """The one Deployment running `image`, after checking every image in the manifest is pinned."""
    problems = []
    serving = []
    for doc in docs:
        if doc.get("kind") not in WORKLOAD_KINDS:
            continue
        name = f"{doc['kind']}/{(doc.get('metadata') or {}).get('name', '?')}"
        for found in container_images(doc):
            if found == PLACEHOLDER_IMAGE or found.startswith(f"{PLACEHOLDER_IMAGE}:"):
                problems.append(f"{name} still runs the placeholder image {found!r}")
            elif not is_pinned(found):
                problems.append(f"{name} runs {found!r}, which is not pinned by digest")
        if doc["kind"] == "Deployment" and str(image) in container_images(doc):
            serving.append(doc)
    if not serving:
        problems.append(f"no Deployment runs {image}: the base Deployment's image must be {PLACEHOLDER_IMAGE!r}")
    elif len(serving) > 1:
        names = ", ".join(doc["metadata"]["name"] for doc in serving)
        problems.append(f"more than one Deployment runs {image} ({names}); deploy gates and undoes exactly one")
    if problems:
        raise KubernetesDeployError(
            "the rendered manifest cannot be deployed:\n  - " + "\n  - ".join(problems)
            + "\nEvery image must be <name>@sha256:<digest> (pin sidecars by digest too).")
    deployment = serving[0]
    metadata = deployment["metadata"]
    labels = ((deployment["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    for doc in docs:
        if (doc.get("kind") == "Service" and (doc.get("metadata") or {}).get("namespace") == metadata.get("namespace")
                and _selects((doc.get("spec") or {}).get("selector") or {}, labels) and doc["spec"].get("ports")):
            return Workload(metadata["name"], metadata.get("namespace"), doc["metadata"]["name"],
                            doc["spec"]["ports"][0]["port"])
    return Workload(metadata["name"], metadata.get("namespace"), None, None)


@dataclass(frozen=True)
class DeploymentState:
    """What the cluster holds for the Deployment: its current revision and the images it runs."""

    revision: int | None
    images: tuple[str, ...]


def deployment_state(obj: dict[str, Any]) -> DeploymentState:
    """Read a Deployment object (`kubectl get deployment -o json`)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    revision = annotations.get(REVISION_ANNOTATION)
    return DeploymentState(int(revision) if str(revision or "").isdigit() else None,
                           tuple(container_images(obj)))


Stage = Literal["apply", "rollout", "smoke"]


@dataclass(frozen=True)
class Recovery:
    """What to do after a failed step: `undo` to `revision`, `delete` the new Deployment, `none` (what
    served before still serves) or `manual` (nothing gitops-ml can safely do: a person must look)."""

    action: Literal["undo", "delete", "none", "manual"]
    revision: int | None
    reason: str


def recovery(stage: Stage, image: ImageRef, before: DeploymentState | None,
             after: DeploymentState | None, after_known: bool = True) -> Recovery:
    """Put back what served before this deploy.

    `before` is the Deployment as it was before apply (None: it did not exist). `after` is only
    read when apply failed, since kubectl applies object by object and a failed apply may still
    have changed the Deployment; `after_known=False` means it could not be read, and counts as
    changed (undoing to the recorded revision is a no-op when nothing changed).
    """
    if stage == "apply" and after_known and (after is None or str(image) not in after.images):
        return Recovery("none", None, "apply failed before the Deployment changed: the previous pods still serve")
    if before is None:
        return Recovery("delete", None, "this deploy created the Deployment: delete it so the unverified model "
                                        "serves no traffic")
    if str(image) in before.images:
        return Recovery("none", None, f"{image} was already serving before this deploy: nothing older to return to")
    if before.revision is None:
        return Recovery("manual", None, "the Deployment had no recorded revision to return to: roll back by hand "
                                      "(kubectl rollout history)")
    return Recovery("undo", before.revision, f"return to revision {before.revision}, which served before")


_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")


def forwarded_port(line: str) -> int | None:
    """The local port in `kubectl port-forward`'s 'Forwarding from 127.0.0.1:PORT -> N' line."""
    match = _FORWARDING.search(line)
    return int(match[1]) if match else None

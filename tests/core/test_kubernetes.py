"""The kubernetes target's pure decisions: image references, the rendered-manifest gate, recovery."""

from __future__ import annotations

import pytest
from gitops_ml.core.kubernetes import (
    PLACEHOLDER_IMAGE,
    DeploymentState,
    ImageRef,
    KubernetesDeployError,
    Workload,
    check_environment,
    deployment_state,
    forwarded_port,
    image_kustomization,
    is_pinned,
    parse_image_ref,
    recovery,
    serving_workload,
)

DIGEST = "sha256:" + "0f" * 32
IMAGE = ImageRef("ghcr.io/acme/churn-model", DIGEST)
OLD = f"ghcr.io/acme/churn-model@sha256:{'11' * 32}"


@pytest.mark.parametrize(("ref", "name"), [
    (f"ghcr.io/acme/churn-model@{DIGEST}", "ghcr.io/acme/churn-model"),
    (f"127.0.0.1:5000/gen-model@{DIGEST}", "127.0.0.1:5000/gen-model"),
    (f"registry.example.com/team/sub/model_v2@{DIGEST}", "registry.example.com/team/sub/model_v2"),
    (f"churn-model:v1.2@{DIGEST}", "churn-model"),  # the tag is dropped: the digest decides
    (f"  ghcr.io/acme/m@{DIGEST}\n", "ghcr.io/acme/m"),
])
def test_a_reference_by_digest_is_parsed(ref, name):
    assert parse_image_ref(ref) == ImageRef(name, DIGEST)
    assert str(parse_image_ref(ref)) == f"{name}@{DIGEST}"


@pytest.mark.parametrize(("ref", "message"), [
    ("ghcr.io/acme/churn-model:latest", "has no digest"),
    ("ghcr.io/acme/churn-model", "has no digest"),
    ("ghcr.io/acme/churn-model@sha256:abc", "is not valid"),
    (f"ghcr.io/acme/churn-model@sha256:{'AB' * 32}", "is not valid"),
    (f"ghcr.io/Acme/churn-model@{DIGEST}", "is not valid"),
    (f"ghcr.io/acme/m@{DIGEST}; rm -rf /", "is not valid"),
    ("", "is not valid"),
])
def test_a_reference_without_a_valid_digest_is_refused(ref, message):
    with pytest.raises(KubernetesDeployError, match=message):
        parse_image_ref(ref)


@pytest.mark.parametrize(("image", "pinned"), [
    (f"a/b@{DIGEST}", True), ("a/b:latest", False), ("a/b", False), (PLACEHOLDER_IMAGE, False),
    (f"a/b:1.0@{DIGEST}", True), (f"a/b@{DIGEST}\n", False),
])
def test_is_pinned(image, pinned):
    assert is_pinned(image) is pinned


def test_image_kustomization_wraps_the_overlay_and_sets_the_placeholder_by_digest():
    assert image_kustomization("../../deploy/kubernetes/overlays/staging", IMAGE) == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../../deploy/kubernetes/overlays/staging"],
        "images": [{"name": PLACEHOLDER_IMAGE, "newName": "ghcr.io/acme/churn-model", "digest": DIGEST}],
    }


def test_environment_names_are_checked_against_the_overlays():
    check_environment("staging", ["production", "staging"])
    with pytest.raises(KubernetesDeployError, match="'qa' has no overlay .*available: production, staging"):
        check_environment("qa", ["production", "staging"])
    with pytest.raises(KubernetesDeployError, match="not a valid name"):
        check_environment("Staging", ["staging"])


def deployment(name="churn-model", images=(str(IMAGE),), init=(), namespace="ns", labels=None):
    labels = labels or {"app": name}
    return {"kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)],
                "initContainers": [{"name": f"i{i}", "image": image} for i, image in enumerate(init)]}}}}


def service(name="churn-model", selector=None, port=80, namespace="ns"):
    return {"kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": selector or {"app": "churn-model"}, "ports": [{"port": port}]}}


def test_the_serving_workload_and_the_service_in_front_of_it_are_found():
    docs = [service("other", {"app": "other"}, 81), service(port=80, namespace="elsewhere"),
            service("churn-model-http", port=8080), deployment(),
            {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "churn-model"}}]
    workload = serving_workload(docs, IMAGE)
    assert workload == Workload("churn-model", "ns", "churn-model-http", 8080)


def test_without_a_service_there_is_nothing_to_forward_to():
    assert serving_workload([deployment()], IMAGE) == Workload("churn-model", "ns", None, None)


@pytest.mark.parametrize(("docs", "problem"), [
    ([deployment(images=(PLACEHOLDER_IMAGE,))], "still runs the placeholder image"),
    ([deployment(images=(str(IMAGE), "busybox:latest"))], "runs 'busybox:latest', which is not pinned"),
    ([deployment(init=("alpine",))], "runs 'alpine', which is not pinned"),
    ([deployment(), {"kind": "CronJob", "metadata": {"name": "job"}, "spec": {"jobTemplate": {"spec": {"template": {
        "spec": {"containers": [{"image": "tool:1.0"}]}}}}}}], "CronJob/job runs 'tool:1.0'"),
    ([deployment(images=(OLD,))], "no Deployment runs"),
    ([deployment(), deployment("copy")], "more than one Deployment runs"),
])
def test_a_manifest_that_is_not_fully_pinned_is_refused(docs, problem):
    with pytest.raises(KubernetesDeployError, match=problem):
        serving_workload(docs, IMAGE)


def test_deployment_state_reads_the_revision_and_images():
    obj = {**deployment(images=(OLD,)), "metadata": {"annotations": {"deployment.kubernetes.io/revision": "12"}}}
    assert deployment_state(obj) == DeploymentState(12, (OLD,))
    assert deployment_state(deployment(images=(OLD,))) == DeploymentState(None, (OLD,))


BEFORE = DeploymentState(4, (OLD,))
AFTER_CHANGED = DeploymentState(5, (str(IMAGE),))


@pytest.mark.parametrize(("stage", "before", "after", "known", "action", "revision"), [
    ("apply", BEFORE, BEFORE, True, "none", None),           # nothing changed
    ("apply", None, None, True, "none", None),               # nothing was created
    ("apply", BEFORE, AFTER_CHANGED, True, "undo", 4),       # partial apply changed the Deployment
    ("apply", BEFORE, None, False, "undo", 4),               # unknown counts as changed
    ("apply", None, None, False, "delete", None),
    ("rollout", BEFORE, None, True, "undo", 4),
    ("smoke", BEFORE, None, True, "undo", 4),
    ("rollout", None, None, True, "delete", None),           # the first deploy created it
    ("smoke", DeploymentState(4, (str(IMAGE),)), None, True, "none", None),  # it already served this image
    ("smoke", DeploymentState(None, (OLD,)), None, True, "manual", None),
])
def test_recovery(stage, before, after, known, action, revision):
    plan = recovery(stage, IMAGE, before, after, known)
    assert (plan.action, plan.revision) == (action, revision), plan.reason


def test_forwarded_port_reads_kubectls_line():
    assert forwarded_port("Forwarding from 127.0.0.1:43121 -> 8000\n") == 43121
    assert forwarded_port("Forwarding from [::1]:43121 -> 8000") is None
    assert forwarded_port("Handling connection for 43121") is None

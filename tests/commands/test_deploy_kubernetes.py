"""The kubernetes deploy backend against the recorded fake kubectl: the exact calls for each outcome.

Rendering is real (the fake passes `kustomize` to the real kubectl); the cluster's answers are
scripted; the smoke test talks HTTP through the fake's port-forward to a small server standing in
for the pod.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from gitops_ml.commands.deploy_kubernetes import deploy_kubernetes
from gitops_ml.core.kubernetes import KubernetesDeployError
from gitops_ml.io.kubectl import Kubectl

from tests.kube import DIGEST, OLD_DIGEST, deployment_json, write_manifests
from tests.template_files import contract

IMAGE = f"ghcr.io/acme/churn-model@{DIGEST}"
OLD_IMAGE = f"ghcr.io/acme/churn-model@{OLD_DIGEST}"
NS = "churn-model-production"
EXPECTED = [0.25, 0.75]


class Pod(ThreadingHTTPServer):
    """Stands in for the serving pod behind port-forward: /ready, and /predict answering `predictions`."""

    predictions = EXPECTED
    requests: list[str]


class PodHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.requests.append(f"GET {self.path}")
        self._send(200, {"status": "ready"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append(f"POST {self.path}")
        self._send(200, {"predictions": self.server.predictions})


@pytest.fixture
def pod():
    server = Pod(("127.0.0.1", 0), PodHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class Verdict:
    passed: bool
    detail: str


def smoke(base: str) -> Verdict:
    """Ready, then predictions equal to the expected ones (what the real smoke test checks, in small)."""
    with urllib.request.urlopen(f"{base}/ready", timeout=5) as response:
        if response.status != 200:
            return Verdict(False, f"/ready answered {response.status}")
    request = urllib.request.Request(f"{base}/predict", data=b'{"rows": [{}, {}]}',
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        predictions = json.load(response)["predictions"]
    return Verdict(predictions == EXPECTED, f"predictions {predictions}, expected {EXPECTED}")


@pytest.fixture
def repo(tmp_path):
    return write_manifests(tmp_path / "repo")


def deploy(repo, tmp_path, environment="production", image=IMAGE, **kwargs):
    return deploy_kubernetes(contract(), environment, image, root=repo, out=tmp_path / "out", smoke=smoke, **kwargs)


def calls(tmp_path, revision_before=3, undo=True):
    """The kubectl argv deploy may make, by name, with this test's paths."""
    out = tmp_path / "out"
    return {
        "kustomize": ["kustomize", str(out / "kustomize")],
        "get": ["--namespace", NS, "--request-timeout=30s", "get", "deployment/churn-model", "--output=json",
                "--ignore-not-found"],
        "apply": ["--request-timeout=30s", "apply", "--filename", str(out / "manifest.yaml")],
        "status": ["--namespace", NS, "rollout", "status", "deployment/churn-model", "--timeout=600s"],
        "port-forward": ["--namespace", NS, "port-forward", "service/churn-model", ":80", "--address=127.0.0.1"],
        "undo": ["--namespace", NS, "--request-timeout=30s", "rollout", "undo", "deployment/churn-model",
                 f"--to-revision={revision_before}"],
        "delete": ["--namespace", NS, "--request-timeout=30s", "delete", "deployment/churn-model",
                   "--ignore-not-found", "--wait=false"],
    }


def sequence(tmp_path, *names, **kwargs):
    table = calls(tmp_path, **kwargs)
    return [table[name] for name in names]


def running(image=OLD_IMAGE, revision=3):
    return {"stdout": deployment_json(revision, image)}


def test_success_applies_the_pinned_image_waits_for_the_rollout_and_smoke_tests_it(repo, tmp_path, fake_kubectl,
                                                                                   pod):
    fake_kubectl.script({"get": [running()], "port-forward": [{"forward_to": f"127.0.0.1:{pod.server_port}"}]})
    result = deploy(repo, tmp_path)
    assert fake_kubectl.calls() == sequence(tmp_path, "kustomize", "get", "apply", "status", "port-forward")
    assert (result.ok, result.status, result.failed_stage, result.recovery) == (True, "deployed", None, "none")
    assert (result.deployment, result.namespace, result.image, result.previous_revision) == (
        "churn-model", NS, IMAGE, 3)
    assert pod.requests == ["GET /ready", "POST /predict"]  # the smoke test went through the port-forward
    applied = list(yaml.safe_load_all(result.manifest.read_text()))
    deployment = next(doc for doc in applied if doc["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    assert deployment["metadata"]["namespace"] == NS
    record = json.loads(json.dumps(result.to_dict()))  # what the deploy report publishes
    assert record["status"] == "deployed" and [step["name"] for step in record["steps"]] == [
        "render", "apply", "rollout", "smoke"]


def test_rollout_failure_undoes_to_the_revision_that_served_before(repo, tmp_path, fake_kubectl):
    fake_kubectl.script({"get": [running(revision=7)], "rollout status": [
        {"exit": 1, "stderr": 'error: deployment "churn-model" exceeded its progress deadline'}, {"exit": 0}]})
    result = deploy(repo, tmp_path)
    assert fake_kubectl.calls() == sequence(tmp_path, "kustomize", "get", "apply", "status", "undo", "status",
                                            revision_before=7)
    assert (result.ok, result.failed_stage, result.recovery, result.recovered) == (False, "rollout", "undo", True)
    assert result.status == "rolled back" and "progress deadline" in result.detail


def test_smoke_failure_undoes_the_rollout(repo, tmp_path, fake_kubectl, pod):
    pod.predictions = [0.9, 0.1]  # the new pods answer, but not with the reviewed model's predictions
    fake_kubectl.script({"get": [running()], "port-forward": [{"forward_to": f"127.0.0.1:{pod.server_port}"}]})
    result = deploy(repo, tmp_path)
    assert fake_kubectl.calls() == sequence(tmp_path, "kustomize", "get", "apply", "status", "port-forward", "undo",
                                            "status")
    assert (result.ok, result.failed_stage, result.recovery, result.recovered) == (False, "smoke", "undo", True)
    assert "[0.9, 0.1]" in result.detail


def test_apply_failure_leaves_the_running_deployment_alone(repo, tmp_path, fake_kubectl):
    fake_kubectl.script({"get": [running()], "apply": [{"exit": 1, "stderr": "error: Unauthorized"}]})
    result = deploy(repo, tmp_path)
    # the second get checks whether the Deployment changed anyway: it still runs the old image
    assert fake_kubectl.calls() == sequence(tmp_path, "kustomize", "get", "apply", "get")
    assert (result.ok, result.failed_stage, result.recovery, result.recovered) == (False, "apply", "none", True)
    assert "Unauthorized" in result.detail


def test_partial_apply_that_changed_the_deployment_is_undone(repo, tmp_path, fake_kubectl):
    """kubectl applies object by object: the Deployment may change even when another object fails."""
    fake_kubectl.script({"get": [running(), running(IMAGE, revision=4)],
                         "apply": [{"exit": 1, "stderr": 'HorizontalPodAutoscaler "churn-model" is invalid'}]})
    result = deploy(repo, tmp_path)
    assert fake_kubectl.calls() == sequence(tmp_path, "kustomize", "get", "apply", "get", "undo", "status")
    assert (result.failed_stage, result.recovery, result.recovered) == ("apply", "undo", True)


def test_first_deploy_that_fails_deletes_the_deployment_it_created(repo, tmp_path, fake_kubectl):
    fake_kubectl.script({"get": [{"stdout": ""}], "rollout status": [{"exit": 1, "stderr": "timed out"}]})
    result = deploy(repo, tmp_path)
    assert fake_kubectl.calls() == sequence(tmp_path, "kustomize", "get", "apply", "status", "delete")
    assert (result.failed_stage, result.recovery, result.recovered, result.previous_revision) == (
        "rollout", "delete", True, None)


def test_a_failed_undo_is_reported_as_not_restored(repo, tmp_path, fake_kubectl):
    fake_kubectl.script({"get": [running()], "rollout status": [{"exit": 1, "stderr": "timed out"}],
                         "rollout undo": [{"exit": 1, "stderr": "error: unable to find specified revision 3"}]})
    result = deploy(repo, tmp_path)
    assert fake_kubectl.calls() == sequence(tmp_path, "kustomize", "get", "apply", "status", "undo")
    assert (result.ok, result.recovered) == (False, False)
    assert result.status == "failed, and the previous state was not restored"
    assert result.steps[-1].name == "undo" and "revision 3" in result.steps[-1].detail


def test_port_forward_that_never_forwards_fails_the_smoke_test_and_undoes(repo, tmp_path, fake_kubectl):
    fake_kubectl.script({"get": [running()], "port-forward": [
        {"exit": 1, "stderr": "error: unable to forward port because pod is not running"}]})
    result = deploy(repo, tmp_path)
    assert fake_kubectl.calls() == sequence(tmp_path, "kustomize", "get", "apply", "status", "port-forward", "undo",
                                            "status")
    assert result.failed_stage == "smoke" and "pod is not running" in result.detail


def test_environment_url_is_smoke_tested_directly_and_the_context_is_passed(repo, tmp_path, fake_kubectl, pod):
    fake_kubectl.script({"get": [running()]})
    result = deploy(repo, tmp_path, environment="staging", url=f"http://127.0.0.1:{pod.server_port}/",
                    kubectl=Kubectl(context="prod-cluster"))
    assert result.ok and result.namespace == "churn-model-staging"
    recorded = fake_kubectl.calls()
    assert [argv[:2] for argv in recorded[1:]] == [["--context", "prod-cluster"]] * 3  # get, apply, status
    assert not any("port-forward" in argv for argv in recorded)
    assert pod.requests == ["GET /ready", "POST /predict"]


def test_redeploying_the_image_already_serving_is_not_undone_to_an_older_one(repo, tmp_path, fake_kubectl):
    fake_kubectl.script({"get": [running(IMAGE, revision=5)], "rollout status": [{"exit": 1, "stderr": "timed out"}]})
    result = deploy(repo, tmp_path)
    assert fake_kubectl.calls() == sequence(tmp_path, "kustomize", "get", "apply", "status")
    assert (result.recovery, result.recovered) == ("none", True)


@pytest.mark.parametrize(("environment", "image", "message"), [
    ("production", "ghcr.io/acme/churn-model:latest", "has no digest"),
    ("production", "ghcr.io/acme/churn-model", "has no digest"),
    ("production", "ghcr.io/acme/churn-model@sha256:1234", "not valid"),
    ("prod", IMAGE, "environment 'prod' has no overlay under deploy/kubernetes/overlays/; available: production, "
                    "staging"),
    ("../base", IMAGE, "'../base' is not a valid name"),
])
def test_bad_input_is_refused_before_kubectl_runs(repo, tmp_path, fake_kubectl, environment, image, message):
    with pytest.raises(KubernetesDeployError, match="^.*" + message.replace("(", r"\(")):
        deploy(repo, tmp_path, environment=environment, image=image)
    assert fake_kubectl.calls() == []


def test_an_unpinned_sidecar_in_the_overlay_is_refused_before_the_cluster_is_touched(repo, tmp_path, fake_kubectl):
    overlay = repo / "deploy/kubernetes/overlays/production/kustomization.yaml"
    config = yaml.safe_load(overlay.read_text())
    config["patches"].append({"target": {"kind": "Deployment"}, "patch": yaml.safe_dump([
        {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "log", "image": "busybox:latest"}},
    ])})
    overlay.write_text(yaml.safe_dump(config))
    with pytest.raises(KubernetesDeployError, match=r"Deployment/churn-model runs 'busybox:latest', which is not "
                                                    r"pinned by digest"):
        deploy(repo, tmp_path)
    assert fake_kubectl.calls() == sequence(tmp_path, "kustomize")


def test_without_a_service_or_url_the_smoke_test_fails_and_the_rollout_is_undone(repo, tmp_path, fake_kubectl):
    base = repo / "deploy/kubernetes/base/kustomization.yaml"
    base.write_text(base.read_text().replace("  - service.yaml\n", ""))
    fake_kubectl.script({"get": [running()]})
    result = deploy(repo, tmp_path)
    assert fake_kubectl.calls() == sequence(tmp_path, "kustomize", "get", "apply", "status", "undo", "status")
    assert result.failed_stage == "smoke" and "no Service selects the pods of churn-model" in result.detail


def test_the_deploy_verb_dispatches_to_kubernetes_with_the_full_smoke_test(repo, tmp_path, fake_kubectl, pod):
    """Through `gitops-ml deploy`'s dispatch: the pod answers /metadata without the expected model, so the
    verb's smoke test (the same as docker's) fails, the rollout is undone and the result says why."""
    from gitops_ml.commands.deploy import backend_for
    from gitops_ml.core.image import parse_ref
    from gitops_ml.core.smoke import Golden

    k8s = contract().model_copy(update={"deploy": contract().deploy.model_copy(
        update={"target": "kubernetes", "environments": {}})})  # as the kubernetes template renders it
    fake_kubectl.script({"get": [running()], "port-forward": [{"forward_to": f"127.0.0.1:{pod.server_port}"}]})
    golden = Golden("churn-model", "4", [{}, {}], EXPECTED, None, "test")
    result = backend_for(k8s, repo)(k8s, "production", parse_ref(IMAGE), golden)
    assert (result.status, result.step, result.version, result.image) == ("failure", "smoke", "4", IMAGE)
    assert "metadata" in result.reason and result.undo == ["undo: rolled back"]
    assert calls(tmp_path)["undo"] in fake_kubectl.calls()

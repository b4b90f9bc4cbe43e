"""The generated repo's kustomize overlays, rendered with the real kubectl and validated offline.

No cluster runs here: every overlay is rendered (`kubectl kustomize`), validated against the
Kubernetes schemas (`kubernetes-validate --strict`, pinned versions), and its serving pod checked
for what the deploy relies on. The serving image is run the way the Deployment runs it.
"""

from __future__ import annotations

import json
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops_ml.commands.deploy_kubernetes import deploy_kubernetes, overlays, render
from gitops_ml.core.contract import load_contract
from gitops_ml.core.kubernetes import (
    PLACEHOLDER_IMAGE,
    KubernetesDeployError,
    Workload,
    is_pinned,
    parse_image_ref,
    serving_workload,
)
from gitops_ml.io.kubectl import Kubectl

from tests.conftest import GENERATED, ROOT, ROW, free_port, project_env, run, wait_for_http
from tests.kube import DIGEST, KUBERNETES_VERSIONS, REAL_KUBECTL, kustomize, validate, write_manifests

PROJECT = "fraud-2024-model-v2"
REGISTRY = "127.0.0.1:5000/risk-team"
ENVIRONMENTS = ("staging", "production")
LOCKED_DOWN_TAG = "k8s-helper/gen-model:locked-down"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The template rendered for kubernetes (hooks skipped: git and DVC play no part here)."""
    from cookiecutter.main import cookiecutter

    answers = {"project": PROJECT, "deploy_target": "kubernetes", "container_registry": REGISTRY, "task": "regression"}
    return Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(tmp_path_factory.mktemp("bake-k8s")),
                             extra_context=answers, accept_hooks=False))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def docs_of(text: str) -> dict[str, dict]:
    """Rendered documents by kind (each overlay has one of each)."""
    docs = [doc for doc in yaml.safe_load_all(text) if doc]
    by_kind = {doc["kind"]: doc for doc in docs}
    assert len(by_kind) == len(docs), "one object of each kind expected"
    return by_kind


def rendered(project, environment: str) -> dict[str, dict]:
    return docs_of(kustomize(project / "deploy" / "kubernetes" / "overlays" / environment))


def test_the_overlays_are_staging_and_production(project):
    assert overlays(project) == sorted(ENVIRONMENTS)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_overlay_renders_and_validates_strictly(project, tmp_path, environment, version):
    manifest = tmp_path / f"{environment}.yaml"
    manifest.write_text(kustomize(project / "deploy" / "kubernetes" / "overlays" / environment))
    result = validate(manifest, version)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(docs_of(manifest.read_text())) == {"Deployment", "Service", "HorizontalPodAutoscaler",
                                                  "PodDisruptionBudget", "NetworkPolicy"}


def test_the_validator_rejects_an_unknown_field(project, tmp_path):
    """The validation above can fail: a misspelt field is refused under --strict."""
    manifest = tmp_path / "bad.yaml"
    text = kustomize(project / "deploy" / "kubernetes" / "overlays" / "production")
    manifest.write_text(text.replace("readOnlyRootFilesystem:", "readOnlyRootFileSystem:"))
    result = validate(manifest, KUBERNETES_VERSIONS[0])
    assert result.returncode != 0 and "readOnlyRootFileSystem" in result.stdout + result.stderr


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_set_image_pins_every_image_by_digest(project, tmp_path, environment):
    image = parse_image_ref(f"{REGISTRY}/{PROJECT}@{DIGEST}")
    before = snapshot(project)
    manifest, workload = render(project, environment, image, tmp_path / "out", Kubectl(binary=str(REAL_KUBECTL)))
    text = manifest.read_text()
    assert workload == Workload(PROJECT, f"{PROJECT}-{environment}", PROJECT, 80)
    images = re.findall(r"^\s*image:\s*(\S+)", text, re.MULTILINE)
    assert images == [str(image)]
    assert all(is_pinned(found) for found in images)
    assert ":latest" not in text and PLACEHOLDER_IMAGE not in text
    assert snapshot(project) == before, "deploy must not change the repository's files"


def test_an_overlay_as_committed_is_refused_until_the_image_is_set(project):
    """Unrendered by deploy, the overlay runs only the placeholder, and the deploy gate says so."""
    docs = list(rendered(project, "production").values())
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    assert [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]] == [PLACEHOLDER_IMAGE]
    with pytest.raises(KubernetesDeployError, match="still runs the placeholder image"):
        serving_workload(docs, parse_image_ref(f"{REGISTRY}/{PROJECT}@{DIGEST}"))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_serving_pod_is_probed_bounded_and_locked_down(project, environment):
    deployment = rendered(project, environment)["Deployment"]
    spec = deployment["spec"]
    assert "replicas" not in spec, "the HPA owns the replica count"
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    probes = {name: (container[name]["httpGet"]["path"], container[name]["httpGet"]["port"])
              for name in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes == {"startupProbe": ("/ready", "http"), "readinessProbe": ("/ready", "http"),
                      "livenessProbe": ("/health", "http")}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "model loading gets at least two minutes"
    resources = container["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert mounts == {"/tmp": "tmp", "/logs": "logs"}
    assert all("emptyDir" in volumes[name] for name in mounts.values())
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["PREDICTION_LOG_DIR"].startswith("/logs/"), "the prediction log goes to the writable volume"


def test_the_overlays_differ_in_namespace_size_and_autoscaling_bounds(project):
    staging, production = (rendered(project, environment) for environment in ENVIRONMENTS)
    for environment, docs in zip(ENVIRONMENTS, (staging, production), strict=True):
        assert {doc["metadata"]["namespace"] for doc in docs.values()} == {f"{PROJECT}-{environment}"}
        assert docs["Deployment"]["spec"]["template"]["metadata"]["labels"]["gitops-ml/environment"] == environment
    hpa = {name: docs["HorizontalPodAutoscaler"]["spec"] for name, docs in zip(ENVIRONMENTS, (staging, production),
                                                                              strict=True)}
    assert hpa["staging"]["minReplicas"] < hpa["production"]["minReplicas"] <= hpa["production"]["maxReplicas"]
    assert hpa["production"]["minReplicas"] >= 2, "production survives losing a pod"
    assert hpa["production"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": PROJECT}
    container = production["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == container["resources"]["limits"], "production: Guaranteed QoS"
    staging_limits = staging["Deployment"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert staging_limits != container["resources"]["limits"]


def test_service_pdb_and_network_policy_select_the_serving_pods(project):
    docs = rendered(project, "production")
    labels = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]

    def selects(selector):
        return selector and all(labels.get(key) == value for key, value in selector.items())

    assert selects(docs["Service"]["spec"]["selector"])
    assert docs["Service"]["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert selects(docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"])
    policy = docs["NetworkPolicy"]["spec"]
    assert selects(policy["podSelector"]["matchLabels"])
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["egress"] == [], "no egress at all"
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]  # the container's port 8000, named
    assert rule["from"] == [{"podSelector": {}}, {"namespaceSelector": {"matchLabels": {"gitops-ml/ingress": "true"}}}]


def test_the_role_documented_for_the_deploy_identity_is_valid(project, tmp_path):
    readme = (project / "deploy" / "kubernetes" / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL) if "kind: Role" in b]
    manifest = tmp_path / "role.yaml"
    manifest.write_text(block)
    result = validate(manifest, KUBERNETES_VERSIONS[0])
    assert result.returncode == 0, result.stdout + result.stderr
    verbs = {(group, resource): rule["verbs"] for rule in yaml.safe_load(block)["rules"]
             for group in rule["apiGroups"] for resource in rule["resources"]}
    assert verbs[("", "pods/portforward")] == ["create"] and "delete" not in verbs[("", "services")]


@dataclass(frozen=True)
class Pod:
    """The serving image, running as the production Deployment runs it."""

    container: Any
    port: int
    version: str


@pytest.fixture(scope="module")
def locked_down_pod(trained, classification, venv, mlflow_server, docker_client, base_image, tmp_path_factory):
    manifests = write_manifests(tmp_path_factory.mktemp("k8s"), GENERATED) / "deploy" / "kubernetes"
    pod = docs_of(kustomize(manifests / "overlays" / "production"))["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    security, pod_security = container["securityContext"], pod["spec"]["securityContext"]
    writable = [mount["mountPath"] for mount in container["volumeMounts"]]

    run([str(venv / "bin" / "gitops-ml"), "bake", "--model", trained["model_uri"]], cwd=classification,
        env=project_env(venv, mlflow_server))
    image, _ = docker_client.images.build(path=str(classification), tag=LOCKED_DOWN_TAG, rm=True,
                                          buildargs={"BASE_IMAGE": base_image})
    port = free_port()
    running = docker_client.containers.run(
        image.id, detach=True, ports={"8000/tcp": ("127.0.0.1", port)}, name=f"k8s-helper-readonly-{port}",
        read_only=security["readOnlyRootFilesystem"], tmpfs={path: "size=64m" for path in writable},
        user=f"{pod_security['runAsUser']}:{pod_security['runAsGroup']}", cap_drop=security["capabilities"]["drop"],
        security_opt=[] if security["allowPrivilegeEscalation"] else ["no-new-privileges"],
        environment={env["name"]: env["value"] for env in container["env"]})
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=120)
        yield Pod(running, port, trained["version"])
    finally:
        running.remove(force=True)
        docker_client.images.remove(LOCKED_DOWN_TAG, noprune=True)


def predict(base: str) -> dict:
    request = urllib.request.Request(f"{base}/predict", data=json.dumps({"rows": [ROW]}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.mark.docker
@pytest.mark.slow
def test_the_serving_image_runs_as_the_deployment_runs_it(locked_down_pod):
    """Read-only root, /tmp the only writable place, user 10001, no capabilities, no privilege escalation."""
    base = f"http://127.0.0.1:{locked_down_pod.port}"
    with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
        assert response.status == 200
    body = predict(base)
    assert len(body["predictions"]) == 1 and body["model_version"] == locked_down_pod.version
    container = locked_down_pod.container
    container.reload()
    assert container.status == "running" and container.attrs["HostConfig"]["ReadonlyRootfs"] is True
    probe = container.exec_run(["python3", "-c", "open('/opt/model/x', 'w')"], user="10001:10001")
    assert probe.exit_code != 0 and b"Read-only file system" in probe.output
    wrote = container.exec_run(["python3", "-c", "open('/tmp/x', 'w').write('ok')"], user="10001:10001")
    assert wrote.exit_code == 0, wrote.output


@dataclass(frozen=True)
class Verdict:
    passed: bool
    detail: str


@pytest.mark.docker
@pytest.mark.slow
def test_deploy_smoke_tests_the_real_app_through_port_forward(locked_down_pod, classification, fake_kubectl,
                                                             tmp_path):
    """The whole deploy path with the real serving app behind the fake's port-forward."""
    repo = write_manifests(tmp_path / "repo", GENERATED)
    fake_kubectl.script({"get": [{"stdout": ""}],
                         "port-forward": [{"forward_to": f"127.0.0.1:{locked_down_pod.port}"}]})
    seen = []

    def smoke(base: str) -> Verdict:
        body = predict(base)
        seen.append(body["model_version"])
        return Verdict(body["model_version"] == locked_down_pod.version, f"serving version {body['model_version']}")

    result = deploy_kubernetes(load_contract(classification / "gitops-ml.yaml"), "production",
                               f"127.0.0.1:5000/{GENERATED}@{DIGEST}", root=repo, out=tmp_path / "out", smoke=smoke)
    assert result.ok, result.detail
    assert seen == [locked_down_pod.version]
    assert fake_kubectl.commands() == ["kustomize", "get", "apply", "rollout status", "port-forward"]

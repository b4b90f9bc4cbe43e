"""Kubernetes test helpers: the recorded fake kubectl on PATH, the template's manifests rendered, validation.

No cluster runs here. Rendering (`kubectl kustomize`) and schema validation (`kubernetes-validate
--strict`) are real; cluster calls go to tests/fake_kubectl.py, which records them.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pytest

from tests.conftest import ROOT, VENV_BIN
from tests.fake_kubectl import command_key

TEMPLATE_MANIFESTS = ROOT / "{{cookiecutter.project}}" / "deploy" / "kubernetes"
REAL_KUBECTL = VENV_BIN / "kubectl"
# The oldest Kubernetes release the manifests support and the newest the validator knows; both pinned.
KUBERNETES_VERSIONS = ("1.33.0", "1.37.0")
DIGEST = "sha256:" + "ab" * 32
OLD_DIGEST = "sha256:" + "01" * 32


def write_manifests(root: Path, project: str = "churn-model") -> Path:
    """The template's deploy/kubernetes rendered for `project` under `root` (no full bake needed)."""
    for source in TEMPLATE_MANIFESTS.rglob("*"):
        if source.is_file():
            target = root / "deploy" / "kubernetes" / source.relative_to(TEMPLATE_MANIFESTS)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = jinja2.Environment().from_string(source.read_text()).render(cookiecutter={"project": project})
            target.write_text(text + "\n")
    return root


def kustomize(directory: Path) -> str:
    result = subprocess.run([str(REAL_KUBECTL), "kustomize", str(directory)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def validate(manifest: Path, version: str) -> subprocess.CompletedProcess:
    """kubernetes-validate --strict against the bundled schemas of `version` (offline)."""
    return subprocess.run([str(VENV_BIN / "kubernetes-validate"), "--strict", "--quiet", "-k", version, str(manifest)],
                          capture_output=True, text=True)


def deployment_json(revision: int, image: str, name: str = "churn-model") -> str:
    """What `kubectl get deployment -o json` prints, reduced to what deploy reads."""
    return json.dumps({
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"deployment.kubernetes.io/revision": str(revision)}},
        "spec": {"template": {"spec": {"containers": [{"name": "model", "image": image}]}}},
    })


@dataclass
class FakeKubectl:
    folder: Path

    def script(self, answers: dict[str, list[dict]]) -> None:
        """Answers per command, e.g. {"rollout status": [{"exit": 1}]}; see tests/fake_kubectl.py."""
        (self.folder / "script.json").write_text(json.dumps(answers))

    def calls(self) -> list[list[str]]:
        path = self.folder / "calls.jsonl"
        return [json.loads(line)["argv"] for line in path.read_text().splitlines()] if path.exists() else []

    def commands(self) -> list[str]:
        """The calls by command, e.g. ['kustomize', 'get', 'apply', 'rollout status']."""
        return [command_key(argv) for argv in self.calls()]


@pytest.fixture
def fake_kubectl(tmp_path, monkeypatch) -> FakeKubectl:
    """`kubectl` on PATH is the recorded fake for this test."""
    folder = tmp_path / "fake-kubectl"
    (folder / "bin").mkdir(parents=True)
    shim = folder / "bin" / "kubectl"
    shim.write_text(f'#!/bin/sh\nexec "{VENV_BIN / "python"}" "{ROOT / "tests" / "fake_kubectl.py"}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}:{VENV_BIN}:/usr/local/bin:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_KUBECTL_DIR", str(folder))
    monkeypatch.setenv("FAKE_KUBECTL_REAL", str(REAL_KUBECTL))
    return FakeKubectl(folder)

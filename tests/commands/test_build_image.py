"""`gitops-ml build-image` for real: the generated Dockerfile built with the Docker SDK, pushed to a
real OCI registry, named by digest, the digest recorded on the model version, golden expectations
computed offline."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from datetime import datetime

import mlflow.sklearn
import pandas as pd
import pytest
import yaml
from gitops_ml.cli import main
from gitops_ml.core.contract import load_contract
from gitops_ml.core.dataset import to_matrix
from gitops_ml.io.registry import Registry

from tests.conftest import SHIP_MODEL

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def registry_get(url: str, accept: str | None = None) -> tuple[dict, dict]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read()), dict(response.headers)


def test_the_image_is_pushed_tagged_labelled_and_recorded_by_digest(shipped, ship_project, oci_registry, tracking,
                                                                     docker_client):
    built = shipped["1"]["image"]
    repository = f"{oci_registry}/{SHIP_MODEL}"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ship_project, capture_output=True, text=True).stdout.strip()
    assert built["digest"].startswith("sha256:") and built["image"] == f"{repository}@{built['digest']}"
    assert built["tags"] == ["v1", f"sha-{head[:7]}"]

    # The registry holds both tags, and tag v1 is exactly that digest.
    tags, _ = registry_get(f"http://{oci_registry}/v2/{SHIP_MODEL}/tags/list")
    assert {"v1", "v2", f"sha-{head[:7]}"} <= set(tags["tags"])
    _, headers = registry_get(f"http://{oci_registry}/v2/{SHIP_MODEL}/manifests/v1",
                              accept="application/vnd.docker.distribution.manifest.v2+json")
    assert headers["Docker-Content-Digest"] == built["digest"]

    # The digest is on the model version: the audit trail and what deploy and rollback run.
    version = Registry.for_contract(load_contract(ship_project)).get("1")
    assert version.tags["audit.image_digest"] == built["digest"]
    assert version.tags["audit.image_ref"] == built["image"]
    assert version.tags["audit.image_revision"] == head

    labels = docker_client.images.get(built["image"]).labels
    assert labels["org.opencontainers.image.revision"] == head
    assert labels["org.opencontainers.image.source"] == f"https://github.com/acme/{SHIP_MODEL}"
    assert labels["org.opencontainers.image.version"] == "1"
    assert datetime.fromisoformat(labels["org.opencontainers.image.created"]).tzinfo is not None
    assert labels["io.github.gitops-ml.model.name"] == SHIP_MODEL
    assert labels["io.github.gitops-ml.model.version"] == "1"
    assert labels["io.github.gitops-ml.data.hash"] == "md5-1"
    assert labels["io.github.gitops-ml.model.run-id"] == version.run_id


def test_the_image_bakes_the_version_but_not_the_golden_file(shipped, docker_client):
    listing = docker_client.containers.run(shipped["2"]["image"]["image"], ["sh", "-c", "ls /opt/model; cat "
                                           "/opt/model/registry.json; ls /opt"], remove=True).decode()
    assert "MLmodel" in listing and '"version": "2"' in listing
    assert "golden" not in listing


def test_golden_expectations_are_the_registered_versions_offline_predictions(shipped, ship_project, tracking):
    contract = load_contract(ship_project)
    features = contract.data.features
    for version in ("1", "2"):
        golden = shipped[version]["golden"]
        assert (golden["model_name"], golden["version"], golden["source"]) == (SHIP_MODEL, version,
                                                                               "data/split/test.csv")
        assert len(golden["rows"]) == 50  # deploy.smoke_rows of the generated contract when the images were built
        assert all(set(row) == set(features) for row in golden["rows"])
        model = mlflow.sklearn.load_model(f"models:/{SHIP_MODEL}/{version}")
        matrix = to_matrix(pd.DataFrame(golden["rows"], columns=features), features)
        assert golden["predictions"] == model.predict(matrix).tolist()
        assert golden["probabilities"] == pytest.approx(model.predict_proba(matrix)[:, 1].tolist(), abs=1e-12)
    # The two versions disagree on these rows, so a smoke test can tell them apart.
    assert shipped["1"]["golden"]["probabilities"] != pytest.approx(shipped["2"]["golden"]["probabilities"], abs=1e-3)


def test_a_malformed_image_repository_is_refused_before_anything_is_built(ship_project, tmp_path, tracking, capsys):
    raw = yaml.safe_load((ship_project / "gitops-ml.yaml").read_text())
    raw["registry"]["image"] = "Registry.Example/Churn Model:latest"
    (tmp_path / "gitops-ml.yaml").write_text(yaml.safe_dump(raw))
    assert main(["build-image", "--contract", str(tmp_path / "gitops-ml.yaml"), "--version", "1"]) == 2
    assert "registry.image 'Registry.Example/Churn Model:latest' is not an image repository" in capsys.readouterr().err
    assert not (tmp_path / "build").exists()

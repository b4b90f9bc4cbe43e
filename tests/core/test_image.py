"""Image names: references pinned by digest, tags, OCI labels, the registry host, publishable URLs."""

from __future__ import annotations

import pytest
from gitops_ml.core.image import (
    ImageRef,
    ImageReferenceError,
    check_repository,
    labels,
    parse_ref,
    public_url,
    registry_host,
    tags_for,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(("reference", "repository"), [
    (f"ghcr.io/acme/churn@{DIGEST}", "ghcr.io/acme/churn"),
    (f"127.0.0.1:5000/acme/churn:v3@{DIGEST}", "127.0.0.1:5000/acme/churn"),  # a tag before the digest is dropped
    (f"churn@{DIGEST}", "churn"),
])
def test_references_pinned_by_digest_parse(reference, repository):
    assert parse_ref(reference) == ImageRef(repository, DIGEST)
    assert str(parse_ref(reference)) == f"{repository}@{DIGEST}"


@pytest.mark.parametrize("reference", ["ghcr.io/acme/churn:latest", "ghcr.io/acme/churn", "churn@sha256:abc",
                                       f"churn@sha512:{'0' * 128}", "", f"churn@{DIGEST.upper()}"])
def test_anything_not_pinned_by_a_full_digest_is_refused(reference):
    with pytest.raises(ImageReferenceError, match="not pinned by digest"):
        parse_ref(reference)


@pytest.mark.parametrize("repository", ["GHCR.io/Acme/Churn", "acme/churn:v1", "acme//churn", "-churn", "a b"])
def test_malformed_repositories_are_refused_with_the_key(repository):
    with pytest.raises(ImageReferenceError, match=r"registry.image .* is not an image repository"):
        check_repository(repository)


def test_registry_host():
    assert registry_host("ghcr.io/acme/churn") == "ghcr.io"
    assert registry_host("127.0.0.1:5000/churn") == "127.0.0.1:5000"
    assert registry_host("localhost/churn") == "localhost"
    assert registry_host("acme/churn") == "docker.io"


def test_tags_are_the_model_version_and_the_short_revision():
    assert tags_for("12", "0123456789abcdef0123") == ["v12", "sha-0123456"]
    assert tags_for("12", None) == ["v12"]


def test_public_url_never_carries_credentials():
    assert public_url("https://x-access-token:s3cret@github.com/acme/churn.git") == "https://github.com/acme/churn"
    assert public_url("git@github.com:acme/churn.git") == "https://github.com/acme/churn"
    assert public_url("ssh://git@git.example.com:2222/acme/churn.git") == "https://git.example.com:2222/acme/churn"
    assert public_url("/srv/git/churn.git") is None and public_url(None) is None


def test_labels_are_oci_annotations_plus_model_and_data():
    found = labels(model_name="churn", version="3", revision="abc", created="2025-01-01T00:00:00+00:00",
                   source="https://github.com/acme/churn", data_hash="md5:1", run_id=None)
    assert found["org.opencontainers.image.revision"] == "abc"
    assert found["org.opencontainers.image.source"] == "https://github.com/acme/churn"
    assert found["org.opencontainers.image.version"] == "3"
    assert found["io.github.gitops-ml.model.name"] == "churn"
    assert found["io.github.gitops-ml.data.hash"] == "md5:1"
    assert "io.github.gitops-ml.model.run-id" not in found  # unknown values are left out

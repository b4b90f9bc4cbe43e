"""Serving images, by name: tags, OCI labels, and references pinned by digest.

Everything downstream of `build-image` names an image by digest (`REPOSITORY@sha256:...`), never
by a tag: a tag can be moved, a digest names exactly the bytes that were built and reviewed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from gitops_ml.errors import GitopsMLError

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# A repository as Docker accepts it: optional registry host[:port], then lowercase path components.
REPOSITORY = re.compile(
    r"^(?:(?P<host>[A-Za-z0-9.-]+(?::[0-9]+)?)/)?(?P<path>[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)$"
)
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
LABEL_PREFIX = "io.github.gitops-ml"


class ImageReferenceError(GitopsMLError):
    """An image name or reference is malformed, or not pinned by digest where a digest is required."""


@dataclass(frozen=True)
class ImageRef:
    """An image pinned by digest."""

    repository: str
    digest: str

    def __str__(self) -> str:
        return f"{self.repository}@{self.digest}"

    @property
    def short(self) -> str:
        return self.digest.removeprefix("sha256:")[:12]


def check_repository(repository: str, what: str = "registry.image") -> str:
    if not REPOSITORY.match(repository or ""):
        raise ImageReferenceError(
            f"{what} {repository!r} is not an image repository: expected [HOST[:PORT]/]path in lowercase, "
            "e.g. ghcr.io/acme/churn-model (no tag, no digest)"
        )
    return repository


def parse_ref(reference: str) -> ImageRef:
    """`REPOSITORY@sha256:<64 hex>`; anything else (a tag, a short digest) is refused."""
    repository, at, digest = (reference or "").partition("@")
    if not at or not DIGEST.match(digest):
        raise ImageReferenceError(
            f"image {reference!r} is not pinned by digest: deploy only REPOSITORY@sha256:<64 hex digits> "
            "(`gitops-ml build-image` prints it and records it on the model version)"
        )
    return ImageRef(check_repository(_drop_tag(repository), f"image {reference!r}: repository"), digest)


def _drop_tag(repository: str) -> str:
    """`host:port/name:tag` -> `host:port/name` (a tag before the digest carries no meaning)."""
    head, slash, last = repository.rpartition("/")
    return f"{head}{slash}{last.split(':')[0]}"


def registry_host(repository: str) -> str:
    """The registry a repository lives in (Docker Hub when the first component is not a host)."""
    first, slash, _ = repository.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def tags_for(version: str, revision: str | None) -> list[str]:
    """`v<model version>` and, when the source revision is known, `sha-<7 hex>` (docker/metadata-action's form)."""
    tags = [f"v{version}"]
    if revision:
        tags.append(f"sha-{revision[:7]}")
    for tag in tags:
        if not TAG.match(tag):
            raise ImageReferenceError(f"tag {tag!r} is not a valid image tag (model version {version!r})")
    return tags


def public_url(url: str | None) -> str | None:
    """A repository URL safe to publish: any user:password@ removed."""
    if not url:
        return None
    if url.startswith("git@") and ":" in url:  # scp-like git@github.com:owner/repo.git
        host, _, path = url.removeprefix("git@").partition(":")
        return f"https://{host}/{path.removesuffix('.git')}"
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return None
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit(("https" if parts.scheme in ("ssh", "git") else parts.scheme, host,
                       parts.path.removesuffix(".git"), "", ""))


def labels(*, model_name: str, version: str, revision: str | None, created: str, source: str | None,
           data_hash: str | None, run_id: str | None) -> dict[str, str]:
    """OCI annotations (org.opencontainers.image.*) plus gitops-ml's own, skipping unknown values."""
    found = {
        "org.opencontainers.image.title": model_name,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.source": source,
        f"{LABEL_PREFIX}.model.name": model_name,
        f"{LABEL_PREFIX}.model.version": version,
        f"{LABEL_PREFIX}.model.run-id": run_id,
        f"{LABEL_PREFIX}.data.hash": data_hash,
    }
    return {key: str(value) for key, value in found.items() if value}

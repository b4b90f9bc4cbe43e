"""The MLflow model registry behind a small interface: versions, aliases, tags, downloads.

Everything gitops-ml does to a registry goes through `Registry`, so the rest of the code never
touches MlflowClient directly and errors reach the user as `RegistryError` with what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gitops_ml.core.contract import Contract
from gitops_ml.core.redact import redact
from gitops_ml.errors import GitopsMLError

CHAMPION = "champion"
PREVIOUS = "previous-champion"


class RegistryError(GitopsMLError):
    """A registry operation failed; the message names the model, version or alias and what to do."""


def tracking_uri(contract: Contract) -> str:
    """MLFLOW_TRACKING_URI (set by `--tracking-uri` too), else the contract's registry.tracking_uri."""
    return os.environ.get("MLFLOW_TRACKING_URI") or contract.registry.tracking_uri


@dataclass(frozen=True)
class Version:
    name: str
    version: str
    run_id: str | None
    source: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    created_ms: int | None = None  # registration time, milliseconds since the epoch

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _version(mv) -> Version:
    return Version(mv.name, str(mv.version), mv.run_id, mv.source, dict(mv.tags or {}), tuple(mv.aliases or ()),
                   mv.creation_timestamp)


class Registry:
    def __init__(self, uri: str, model_name: str):
        import mlflow
        from mlflow import MlflowClient

        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        self.uri = uri
        self.shown_uri = redact(uri)  # for messages: never the credentials
        self.name = model_name
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    @classmethod
    def for_contract(cls, contract: Contract) -> Registry:
        return cls(tracking_uri(contract), contract.registry.model_name)

    def _call(self, what: str, fn, *args, **kwargs):
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except MlflowException as error:
            raise RegistryError(f"{what} failed at {self.shown_uri}: {redact(error.message)}") from None

    def get(self, version: str | int) -> Version:
        return _version(self._call(f"reading {self.name} version {version}", self.client.get_model_version,
                                   self.name, str(version)))

    def by_alias(self, alias: str) -> Version | None:
        """The version holding `alias`, or None when the model or the alias does not exist yet."""
        from mlflow.exceptions import MlflowException

        try:
            return _version(self.client.get_model_version_by_alias(self.name, alias))
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise RegistryError(
                f"looking up {self.name}@{alias} at {self.shown_uri}: {redact(error.message)}") from None

    def versions(self) -> list[Version]:
        """Every version of the model, oldest first."""
        found = self._call(f"listing versions of {self.name}", self.client.search_model_versions,
                           f"name='{self.name}'")
        return sorted((_version(mv) for mv in found), key=lambda v: int(v.version))

    def latest(self) -> Version | None:
        versions = self.versions()
        return versions[-1] if versions else None

    def set_alias(self, alias: str, version: str) -> None:
        self._call(f"setting {self.name}@{alias} -> {version}", self.client.set_registered_model_alias,
                   self.name, alias, str(version))

    def delete_alias(self, alias: str) -> None:
        self._call(f"deleting {self.name}@{alias}", self.client.delete_registered_model_alias, self.name, alias)

    def set_tags(self, version: str, tags: dict[str, object]) -> None:
        for key, value in tags.items():
            if value is None:
                continue
            self._call(f"tagging {self.name} version {version}", self.client.set_model_version_tag,
                       self.name, str(version), key, str(value))

    def download(self, version: str, dst: Path) -> Path:
        import mlflow

        dst.mkdir(parents=True, exist_ok=True)
        local = self._call(f"downloading {self.name} version {version}", mlflow.artifacts.download_artifacts,
                           artifact_uri=f"models:/{self.name}/{version}", dst_path=str(dst))
        return Path(local)

    def load_sklearn(self, version: str):
        """The version's scikit-learn model, loaded safely (skops, allowlisted types; see io.model_dir)."""
        import tempfile

        from gitops_ml.io.model_dir import load_model_dir

        with tempfile.TemporaryDirectory(prefix="gitops-ml-model-") as tmp:
            return load_model_dir(self.download(version, Path(tmp))).model

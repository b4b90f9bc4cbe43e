"""The MLflow model registry behind a small interface: versions, aliases, tags, downloads.

Everything gitops-ml does to a registry goes through `Registry`, so the rest of the code never
touches MlflowClient directly and errors reach the user as `RegistryError` with what to do.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from gitops_ml.core.contract import Contract
from gitops_ml.core.redact import redact
from gitops_ml.core.trust import missing_credentials
from gitops_ml.errors import GitopsMLError

CHAMPION = "champion"
PREVIOUS = "previous-champion"


class RegistryError(GitopsMLError):
    """A registry operation failed; the message names the model, version or alias and what to do."""


class MissingCredentials(RegistryError):
    """In CI, the job's registry secrets are empty: the check would prove nothing."""


def tracking_uri(contract: Contract) -> str:
    """MLFLOW_TRACKING_URI (set by `--tracking-uri` too), else the contract's registry.tracking_uri.

    In GitHub Actions an empty tracking URI (or, for a job that declares GITOPS_ML_IDENTITY, empty
    credentials) is an error naming the secret, never a silent fall-back to a SQLite file in the runner.
    """
    problem = missing_credentials(os.environ, os.environ.get("GITHUB_ACTIONS") == "true",
                                  os.environ.get("GITOPS_ML_IDENTITY"))
    if problem:
        raise MissingCredentials(problem)
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
        """The production model (`registry.model_name`)."""
        return cls(tracking_uri(contract), contract.registry.model_name)

    @classmethod
    def candidates(cls, contract: Contract) -> Registry:
        """The candidates model pull requests register into (`registry.candidates_model`)."""
        return cls(tracking_uri(contract), contract.registry.candidates_name)

    def sibling(self, name: str) -> Registry:
        """Another registered model on the same server."""
        return Registry(self.uri, name)

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

    def run_tags(self, run_id: str | None) -> dict[str, str]:
        """The tags of the run that logged a version (empty when it has none)."""
        if not run_id:
            return {}
        return dict(self._call(f"reading run {run_id}", self.client.get_run, run_id).data.tags)

    def adopt(self, model_dir: Path, tags: dict[str, object], experiment: str | None = None,
              artifacts: dict[str, Path] | None = None) -> Version:
        """A new version of this model holding a copy of the files in `model_dir`, tagged with `tags` only.

        The files are logged in a run of this identity's own experiment (default: the model's name), so
        the version shares nothing with where they came from: no tag of the source is carried over and
        no later upload to the source's run can change what this version serves. `artifacts` (run
        artifact path -> local file) are logged beside it, e.g. the reference data drift needs.
        """
        import mlflow

        def log() -> tuple[str, str]:
            mlflow.set_experiment(experiment or self.name)
            with mlflow.start_run(run_name="adopted") as active:
                mlflow.set_tags({k: str(v) for k, v in tags.items() if v is not None})
                mlflow.log_artifacts(str(model_dir), artifact_path="model")
                for artifact_path, local in (artifacts or {}).items():
                    mlflow.log_artifact(str(local), artifact_path=str(Path(artifact_path).parent))
                return active.info.run_id, mlflow.get_artifact_uri("model")

        run_id, source = self._call(f"copying {model_dir} into a run for {self.name}", log)
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):  # it exists already (or the next call says why not)
            self.client.create_registered_model(self.name)
        created = self._call(f"registering a new version of {self.name}", self.client.create_model_version,
                             self.name, source, run_id)
        self.set_tags(str(created.version), tags)
        return self.get(created.version)

    def model_tag(self, key: str) -> str | None:
        """A tag of the registered model itself, or None (also when the model does not exist yet)."""
        from mlflow.exceptions import MlflowException

        try:
            return (self.client.get_registered_model(self.name).tags or {}).get(key)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return None
            raise RegistryError(f"reading {self.name} at {self.shown_uri}: {redact(error.message)}") from None

    def set_model_tag(self, key: str, value: str) -> None:
        self._call(f"tagging {self.name}", self.client.set_registered_model_tag, self.name, key, value)

    def run_artifact(self, run_id: str | None, artifact_path: str, dst: Path) -> Path | None:
        """One artifact of a run, downloaded into `dst`; None when the run or the artifact is missing."""
        import mlflow
        from mlflow.exceptions import MlflowException

        if not run_id:
            return None
        dst.mkdir(parents=True, exist_ok=True)
        try:
            return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path,
                                                            dst_path=str(dst)))
        except (MlflowException, OSError):
            return None

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

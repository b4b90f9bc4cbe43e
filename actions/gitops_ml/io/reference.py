"""The champion's reference data: the sample of its training data that drift is measured against.

`gitops-ml train` logs it as the run artifact `REFERENCE_ARTIFACT`; this fetches the champion's
copy. Drift is optional in data-check, so every way of not finding it is a reason, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitops_ml.core.contract import Contract
from gitops_ml.errors import GitopsMLError
from gitops_ml.io.registry import CHAMPION, Registry, tracking_uri

REFERENCE_ARTIFACT = "reference/reference.csv"


@dataclass(frozen=True)
class ChampionReference:
    path: Path | None  # None when unavailable
    source: str  # which version it came from, or why there is none


def champion_reference(contract: Contract, dst: Path) -> ChampionReference:
    """Download the champion's reference CSV into `dst`."""
    uri = tracking_uri(contract)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return ChampionReference(None, f"no tracking database at {uri} yet, so there is no champion")
    name = contract.registry.model_name
    try:
        import mlflow
        from mlflow.exceptions import MlflowException

        registry = Registry.for_contract(contract)
        version = registry.by_alias(CHAMPION)
        if version is None:
            return ChampionReference(None, f"{name} has no '{CHAMPION}' version at {uri} yet")
        if not version.run_id:
            return ChampionReference(None, f"{name} version {version.version} ({CHAMPION}) has no MLflow run")
        dst.mkdir(parents=True, exist_ok=True)
        local = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path=REFERENCE_ARTIFACT,
                                                    dst_path=str(dst))
    except (GitopsMLError, MlflowException, OSError) as error:
        reason = getattr(error, "message", None) or str(error)
        return ChampionReference(None, f"could not fetch {CHAMPION} reference data from {uri}: {reason}")
    return ChampionReference(Path(local), f"{name} version {version.version} ({CHAMPION}), run {version.run_id}")

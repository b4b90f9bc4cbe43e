"""MLflow model directories: how a trained pipeline is saved, and loaded back natively.

The directory is a standard MLflow model (`MLmodel` + skops file), so `mlflow models serve` and
`models:/` URIs work with it, and its `metadata.gitops_ml` block carries what serving and
comparison need: task, target, the feature schema in contract order, and provenance.

A model file is data, never code. Loading goes through skops with `TRUSTED_TYPES`, a constant
allowlist kept here (and, identically, in the generated serving app): never the list of trusted
types a model declares about itself in its MLmodel file, and never pickle or cloudpickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gitops_ml.core.contract import Contract
from gitops_ml.errors import GitopsMLError

MLFLOW_TYPES = {"int": "long", "float": "double", "category": "string", "bool": "boolean"}


def feature_schema(contract: Contract) -> list[dict[str, Any]]:
    """The features as serving validates them: name, type, nullable, allowed categories."""
    columns = contract.data.columns
    return [
        {
            "name": name,
            "type": columns[name].type,
            "nullable": columns[name].nullable,
            "categories": list(columns[name].categories or []),
            "description": columns[name].description,
        }
        for name in contract.data.features
    ]


def signature(contract: Contract):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    columns = contract.data.columns
    inputs = Schema(
        [ColSpec(MLFLOW_TYPES[columns[n].type], n, required=not columns[n].nullable) for n in contract.data.features]
    )
    target = columns[contract.data.target]
    output_type = "double" if contract.model.task == "regression" else MLFLOW_TYPES[target.type]
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(output_type)]))


def pip_requirements() -> list[str]:
    """Explicit requirements: inferring them costs MLflow ~30 s per model."""
    import sklearn
    import skops

    return [f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}", f"skops=={skops.__version__}"]


# Types skops does not trust by default that scikit-learn pipelines need: the fitted trees of
# random forests and gradient boosting, and numpy dtypes. A pipeline needing another type fails
# at training with its name; adding it here is a reviewed change to gitops-ml, not to a model.
TRUSTED_TYPES = (
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


class UnsafeModelError(GitopsMLError):
    """A model file that could run code when loaded (pickle, or skops types outside the allowlist)."""


def _refuse_unknown(types: list[str], where: str) -> None:
    unknown = sorted(set(types) - set(TRUSTED_TYPES))
    if unknown:
        raise UnsafeModelError(
            f"{where} uses type(s) {unknown} that gitops-ml does not load (allowed beyond skops's defaults: "
            f"{list(TRUSTED_TYPES)}); a model file must not be able to run code. Use scikit-learn estimators, or "
            "add a type you trust to TRUSTED_TYPES in gitops_ml/io/model_dir.py (and the serving app) in a "
            "reviewed change to gitops-ml")


def trusted_types(model) -> list[str]:
    """The non-default types this freshly trained (our own) model needs; refused unless allowlisted."""
    import skops.io

    types = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    _refuse_unknown(types, f"the trained {type(model).__name__}")
    return types


def model_metadata(model, contract: Contract, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    classes = getattr(model, "classes_", None)
    return {
        "gitops_ml": {
            "task": contract.model.task,
            "target": contract.data.target,
            "features": feature_schema(contract),
            "classes": [c.item() if hasattr(c, "item") else c for c in classes] if classes is not None else None,
            "estimator": type(model[-1]).__name__ if hasattr(model, "steps") else type(model).__name__,
            **(extra or {}),
        }
    }


def save_model_dir(model, path: Path, contract: Contract, extra: dict[str, Any] | None = None) -> None:
    import mlflow.sklearn

    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=signature(contract),
        pip_requirements=pip_requirements(),
        metadata=model_metadata(model, contract, extra),
        skops_trusted_types=trusted_types(model),
    )


def log_model(model, contract: Contract, registered_name: str | None, extra=None):
    """Log (and optionally register) the model in the active MLflow run; returns MLflow's ModelInfo."""
    import mlflow.sklearn

    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature(contract),
        pip_requirements=pip_requirements(),
        metadata=model_metadata(model, contract, extra),
        skops_trusted_types=trusted_types(model),
        registered_model_name=registered_name,
    )


@dataclass(frozen=True)
class LoadedModel:
    model: Any
    metadata: dict[str, Any]


def load_model_dir(path: str | Path) -> LoadedModel:
    """Load an MLflow scikit-learn model directory safely: skops only, allowlisted types only."""
    import skops.io
    import yaml

    path = Path(path)
    if not (path / "MLmodel").is_file():
        raise UnsafeModelError(f"{path}: not an MLflow model directory (no MLmodel file)")
    mlmodel = yaml.safe_load((path / "MLmodel").read_text()) or {}
    flavor = (mlmodel.get("flavors") or {}).get("sklearn") or {}
    if flavor.get("serialization_format") != "skops":
        raise UnsafeModelError(
            f"{path}: serialization format {flavor.get('serialization_format')!r} is refused: pickle and "
            "cloudpickle run code when loaded. Log the model with `gitops-ml train` (skops format)")
    file = (path / str(flavor.get("pickled_model", ""))).resolve()
    if not file.is_file() or not file.is_relative_to(path.resolve()):
        raise UnsafeModelError(f"{path}: the model file {flavor.get('pickled_model')!r} is not inside the folder")
    types = skops.io.get_untrusted_types(file=file)
    _refuse_unknown(types, f"the model in {path}")
    model = skops.io.load(file, trusted=types)
    return LoadedModel(model=model, metadata=(mlmodel.get("metadata") or {}).get("gitops_ml", {}))

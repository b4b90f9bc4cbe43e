"""MLflow model directories: how a trained pipeline is saved, and loaded back natively.

The directory is a standard MLflow model (`MLmodel` + skops file), so `mlflow models serve` and
`models:/` URIs work with it, and its `metadata.gitops_ml` block carries what serving and
comparison need: task, target, the feature schema in contract order, and provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gitops_ml.core.contract import Contract

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


def trusted_types(model) -> list[str]:
    """Types skops does not trust by default but that this (freshly trained, our own) model uses."""
    import skops.io

    return skops.io.get_untrusted_types(data=skops.io.dumps(model))


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
    import mlflow.sklearn
    import yaml

    path = Path(path)
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    model = mlflow.sklearn.load_model(str(path))
    return LoadedModel(model=model, metadata=(mlmodel.get("metadata") or {}).get("gitops_ml", {}))

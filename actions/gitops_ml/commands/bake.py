"""`gitops-ml bake`: download a registered model into a folder for the serving image."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from gitops_ml.core.contract import Contract
from gitops_ml.io import gha
from gitops_ml.io.registry import Registry, RegistryError


def resolve(registry: Registry, ref: str):
    """A version from `models:/NAME@ALIAS`, `models:/NAME/N`, `@ALIAS` or a version number."""
    target = ref.removeprefix(f"models:/{registry.name}")
    if target.startswith("@"):
        version = registry.by_alias(target[1:])
        if version is None:
            raise RegistryError(
                f"{registry.name}@{target[1:]} does not exist yet at {registry.uri}: "
                "train and promote a model first, or pass a version number"
            )
        return version
    if ref.startswith("models:/") and not target.startswith("/"):
        raise RegistryError(f"{ref} names another model than {registry.name} (registry.model_name in the contract)")
    return registry.get(target.lstrip("/"))


def run(contract: Contract, ref: str, out: Path) -> dict:
    registry = Registry.for_contract(contract)
    version = resolve(registry, ref)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with gha.group(f"download {version.uri}"):
        local = registry.download(version.version, staging)
    info = {
        "name": version.name,
        "version": version.version,
        "run_id": version.run_id,
        "source": version.uri,
        "git_sha": version.tags.get("git_sha"),
        "data_hash": version.tags.get("data_hash"),
    }
    (local / "registry.json").write_text(json.dumps(info, indent=2) + "\n")
    # Replace the old folder only once the new one is complete.
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    local.rename(out)
    shutil.rmtree(staging, ignore_errors=True)
    gha.set_output("version", version.version)
    print(f"baked {version.uri} into {out}/")
    return info

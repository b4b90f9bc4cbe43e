"""`gitops-ml bake`: download a registered model into a folder for the serving image."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import click

from gitops_ml.commands import options
from gitops_ml.core.contract import Contract
from gitops_ml.io import gha
from gitops_ml.io.registry import Registry, RegistryError, Version


@dataclass(frozen=True)
class Inputs:
    model: str
    out: Path


def resolve(registry: Registry, ref: str) -> Version:
    """A version from `models:/NAME@ALIAS`, `models:/NAME/N`, `@ALIAS` or a version number."""
    target = ref.removeprefix(f"models:/{registry.name}")
    if target.startswith("@"):
        version = registry.by_alias(target[1:])
        if version is None:
            raise RegistryError(
                f"{registry.name}@{target[1:]} does not exist yet at {registry.shown_uri}: "
                "train and promote a model first, or pass a version number"
            )
        return version
    if ref.startswith("models:/") and not target.startswith("/"):
        raise RegistryError(f"{ref} names another model than {registry.name} (registry.model_name in the contract)")
    return registry.get(target.lstrip("/"))


def bake(registry: Registry, version: Version, out: Path) -> dict:
    """Download `version` into `out` with its registry.json; `out` is replaced only once complete."""
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
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    local.rename(out)
    shutil.rmtree(staging, ignore_errors=True)
    return info


def run(contract: Contract, inputs: Inputs) -> dict:
    registry = Registry.for_contract(contract)
    if inputs.model.startswith(f"models:/{contract.registry.candidates_name}/"):  # a candidate, e.g. to try it
        registry = registry.sibling(contract.registry.candidates_name)
    version = resolve(registry, inputs.model)
    info = bake(registry, version, inputs.out)
    gha.set_output("version", version.version)
    gha.log(f"baked {version.uri} into {inputs.out}/")
    return info


@click.command("bake")
@options.contract
@options.tracking_uri
@click.option("--model", envvar="GITOPS_ML_MODEL", default="@champion",
              help="models:/NAME@ALIAS, models:/NAME/VERSION, @ALIAS or a version number")
@options.out("build/model", "folder to write")
def cli(**given) -> int:
    """Download a registered model (plus registry.json) into a folder the Dockerfile bakes in."""
    contract, inputs = options.build(Inputs, given)
    run(contract, inputs)
    return 0

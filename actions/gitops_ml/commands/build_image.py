"""`gitops-ml build-image`: the serving image of one approved model version, pushed, named by digest.

The version is baked in from the registry (as `gitops-ml bake` does), the image is built with the
Docker SDK (the log streams as it builds; a failed build shows the failing step's log), tagged
`v<version>` and `sha-<revision>`, labelled (OCI source, revision, created; model name, version,
data hash), and pushed to `registry.image`. The digest the registry answers is what everything
downstream uses, and it is recorded on the model version (`audit.image_digest`, `audit.image_ref`).

It also writes `build/golden.json`: rows from the held-out data and what this version predicts
for them offline, computed here with the registry's copy of the model. The image does not contain
it; the deploy's smoke test compares the running image's answers against it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from gitops_ml.commands import bake, options, resolve
from gitops_ml.core import image
from gitops_ml.core.contract import Contract
from gitops_ml.core.dataset import read_typed, to_matrix
from gitops_ml.core.evaluation import predict
from gitops_ml.core.smoke import Golden, json_rows, pick_rows
from gitops_ml.errors import GitopsMLError
from gitops_ml.io import gha, repo
from gitops_ml.io.docker import Engine
from gitops_ml.io.registry import Registry

BUILD = Path("build")  # the Dockerfile copies build/model; golden.json and image.json sit beside it
HELD_OUT = Path("data/split/test.csv")


@dataclass(frozen=True)
class Inputs:
    root: Path
    version: str | None = None
    pr_number: str | None = None
    data: Path | None = None
    base_image: str | None = None
    sha: str | None = None
    push: bool = True


def rows_file(contract: Contract, root: Path, data: Path | None) -> Path:
    """The golden rows' source: `--data`, else the held-out split, else the training data."""
    if data is not None:
        if not data.is_file():
            raise GitopsMLError(f"--data {data} not found; pass a CSV with the contract's columns")
        return data
    for candidate in (root / HELD_OUT, root / contract.data.train):
        if candidate.is_file():
            return candidate
    raise GitopsMLError(f"no rows for the smoke test: neither {HELD_OUT} nor {contract.data.train} exists in {root}; "
                        "run `dvc pull` (or `dvc repro split`), or pass --data")


def golden_for(contract: Contract, registry: Registry, version: str, source: Path, root: Path) -> Golden:
    """Rows spread over `source` and what `version` (loaded from the registry) predicts for them."""
    features = contract.data.features
    frame = read_typed(source, contract)
    chosen = frame.iloc[pick_rows(frame[features], contract.deploy.smoke_rows)]
    if chosen.empty:
        raise GitopsMLError(f"{source} has no rows to smoke-test with")
    predictions, scores = predict(registry.load_sklearn(version), to_matrix(chosen, features), contract.model.task)
    shown = source.relative_to(root) if source.is_relative_to(root) else source
    return Golden(registry.name, version, json_rows(chosen, features), predictions.tolist(),
                  None if scores is None else scores.tolist(), str(shown))


def write_golden(golden: Golden, path: Path) -> Path:
    return gha.write_text(path, json.dumps(golden.to_dict(), indent=1) + "\n")


def registry_login(engine: Engine, repository: str) -> None:
    """Log in with REGISTRY_USERNAME / REGISTRY_PASSWORD when both are set (else docker's own config)."""
    username, password = os.environ.get("REGISTRY_USERNAME"), os.environ.get("REGISTRY_PASSWORD")
    if username and password:
        engine.login(image.registry_host(repository), username, password)


def run(contract: Contract, inputs: Inputs) -> dict:
    repository = image.check_repository(contract.registry.image)
    registry = Registry.for_contract(contract)
    number = inputs.version or resolve.version_for(registry, inputs.root, inputs.pr_number, fallback_latest=False)
    version = registry.get(number)
    revision = inputs.sha or repo.git_sha(inputs.root)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    build = inputs.root / BUILD

    bake.bake(registry, version, build / "model")
    golden = golden_for(contract, registry, version.version, rows_file(contract, inputs.root, inputs.data),
                        inputs.root)
    write_golden(golden, build / "golden.json")
    print(f"wrote {build / 'golden.json'}: {len(golden.rows)} rows from {golden.source} and version "
          f"{version.version}'s offline predictions")

    tags = image.tags_for(version.version, revision)
    labels = image.labels(model_name=version.name, version=version.version, revision=revision, created=created,
                          source=image.public_url(repo.origin_url(inputs.root)),
                          data_hash=version.tags.get("data_hash"), run_id=version.run_id)
    engine = Engine.connect()
    buildargs = {"BASE_IMAGE": inputs.base_image} if inputs.base_image else {}
    with gha.group(f"docker build {repository}:{tags[0]}"):
        image_id = engine.build(inputs.root, f"{repository}:{tags[0]}", buildargs, labels)
    for tag in tags[1:]:
        engine.tag(image_id, repository, tag)
    result = {"model_name": version.name, "version": version.version, "image_id": image_id, "repository": repository,
              "tags": tags, "labels": labels, "digest": None, "image": None, "golden": str(build / "golden.json")}

    if inputs.push:
        registry_login(engine, repository)
        digests = set()
        for tag in tags:
            with gha.group(f"docker push {repository}:{tag}"):
                digests.add(engine.push(repository, tag))
        if len(digests) != 1:
            raise GitopsMLError(f"the registry answered different digests for one image's tags: {sorted(digests)}")
        digest = digests.pop()
        reference = str(image.ImageRef(repository, digest))
        registry.set_tags(version.version, {"audit.image_digest": digest, "audit.image_ref": reference,
                                            "audit.image_tags": ",".join(tags), "audit.image_built_at": created,
                                            "audit.image_revision": revision})
        result.update(digest=digest, image=reference)
        print(f"pushed {reference} (tags {', '.join(tags)}); recorded on {version.name} version {version.version}")
    else:
        print(f"built {image_id} as {', '.join(f'{repository}:{t}' for t in tags)} (not pushed: --no-push)")

    gha.write_text(build / "image.json", json.dumps(result, indent=2) + "\n")
    for name, value in (("digest", result["digest"] or ""), ("image", result["image"] or ""),
                        ("image-id", image_id), ("tags", ",".join(tags)), ("version", version.version)):
        gha.set_output(name, value)
    gha.add_summary(f"### Built {version.name} version {version.version}\n\n- image: `{result['image'] or image_id}`\n"
                    f"- tags: {', '.join(f'`{t}`' for t in tags)}\n- golden rows: {len(golden.rows)} "
                    f"from `{golden.source}`\n")
    return result


@click.command("build-image")
@options.contract
@options.tracking_uri
@click.option("--version", envvar="GITOPS_ML_VERSION", default=None,
              help="model version of registry.model_name to bake [default: the one tagged for --pr-number, "
                   "else reports/train.json's]")
@options.pr_number
@options.data(None, "CSV the golden rows come from [default: data/split/test.csv, else data.train]")
@click.option("--base-image", envvar="GITOPS_ML_BASE_IMAGE", default=None,
              help="BASE_IMAGE build argument [default: the Dockerfile's]")
@options.sha
@click.option("--push/--no-push", envvar="GITOPS_ML_PUSH", default=True,
              help="push to registry.image and record the digest on the version")
def cli(**given) -> int:
    """Build the serving image of a model version, push it, and print its digest."""
    contract, inputs = options.build(Inputs, given)
    run(contract, inputs)
    return 0

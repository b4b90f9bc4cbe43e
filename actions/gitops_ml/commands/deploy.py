"""`gitops-ml deploy`: run one model version's image, by digest, in one environment, smoke-tested.

The verb resolves what to deploy (the version, the image recorded on it by `build-image`, the
golden expectations) and dispatches on `deploy.target`; each target's module does the rollout and
returns a `DeployResult` (status, reason, environment URL), which this verb reports and records
on the version (`deploy.<environment>.*` tags). It never moves an alias: promotion happens after a
successful deploy, in `gitops-ml promote`; `gitops-ml rollback` calls `redeploy` then swaps them.
Exit 0 when the new version serves, 1 when the deploy failed (the old version still serves).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from gitops_ml.commands import options, resolve
from gitops_ml.commands.build_image import golden_for, rows_file
from gitops_ml.commands.deploy_record import Recorder
from gitops_ml.core.contract import Contract
from gitops_ml.core.deploy import DeployResult, short_reason, summary_markdown
from gitops_ml.core.image import ImageRef, parse_ref
from gitops_ml.core.smoke import Golden
from gitops_ml.errors import GitopsMLError
from gitops_ml.io import gha
from gitops_ml.io.registry import Registry, RegistryError, Version

GOLDEN = Path("build/golden.json")
Backend = Callable[..., DeployResult]


@dataclass(frozen=True)
class Inputs:
    root: Path
    environment: str
    version: str | None = None
    pr_number: str | None = None
    image: str | None = None
    golden: Path | None = None
    data: Path | None = None
    out: Path | None = None
    github: options.GitHubTarget | None = None


def backend_for(contract: Contract, root: Path) -> Backend:
    """The deploy function of `deploy.target`."""
    if contract.deploy.target == "docker":
        from gitops_ml.commands.deploy_docker import deploy

        return deploy
    return lambda contract, environment, ref, golden: deploy_to_kubernetes(contract, environment, ref, golden, root)


@dataclass(frozen=True)
class SmokeVerdict:
    passed: bool
    detail: str


def deploy_to_kubernetes(contract: Contract, environment: str, ref: ImageRef, golden: Golden, root: Path
                         ) -> DeployResult:
    """The kubernetes backend (commands/deploy_kubernetes.py), with the same smoke test as docker's."""
    from gitops_ml.commands.deploy_kubernetes import deploy_kubernetes
    from gitops_ml.core.smoke import problems
    from gitops_ml.io.endpoint import Endpoint

    declared = contract.deploy.environments.get(environment)

    def smoke(url: str) -> SmokeVerdict:
        with Endpoint(url) as endpoint:
            found = problems(endpoint.observe(golden, contract.deploy.health_path, contract.deploy.ready_path),
                             golden, ref.digest)
        return SmokeVerdict(not found, "; ".join(found) or f"{len(golden.rows)} golden rows predicted as expected")

    started = time.time()
    done = deploy_kubernetes(contract, environment, str(ref), root=root, out=root / "build", smoke=smoke,
                             url=declared.url if declared else None)
    return DeployResult(
        "success" if done.ok else "failure", environment, golden.version, str(ref),
        environment_url=declared.url if declared else None, reason=None if done.ok else done.detail,
        step=done.failed_stage, undo=[] if done.ok else [f"{done.recovery}: {done.status}"], started_at=started)


def check_environment(contract: Contract, environment: str) -> None:
    if contract.deploy.target == "kubernetes":
        return  # the overlays under deploy/kubernetes are the environments; the backend checks them
    known = sorted(contract.deploy.environments)
    if environment not in known:
        raise GitopsMLError(f"environment {environment!r} is not declared under deploy.environments in the contract "
                            f"(declared: {known or 'none'}); add it with its url and proxy (docs/shipping.md)")


def image_of(version: Version, given: str | None) -> ImageRef:
    """The image to run: `given`, else the one `build-image` recorded on the version; by digest either way."""
    reference = given or version.tags.get("audit.image_ref")
    if not reference:
        raise GitopsMLError(f"{version.name} version {version.version} has no image recorded (tag audit.image_ref): "
                            f"run `gitops-ml build-image --version {version.version}` first, or pass --image "
                            "REPOSITORY@sha256:...")
    return parse_ref(reference)


def expectations(contract: Contract, registry: Registry, version: str, root: Path, golden: Path | None,
                 data: Path | None) -> Golden:
    """build/golden.json when it is for this version, else recomputed from the data and the registry."""
    path = golden or root / GOLDEN
    if path.is_file():
        try:
            found = Golden.from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))
        except json.JSONDecodeError as error:
            raise GitopsMLError(f"{path} is not JSON ({error}); delete it or rebuild it with `gitops-ml build-image`"
                                ) from None
        if (found.model_name, found.version) == (registry.name, version):
            return found
        print(f"{path} is for {found.model_name} version {found.version}; computing expectations for version {version}")
    elif golden is not None:
        raise GitopsMLError(f"--golden {golden} not found")
    return golden_for(contract, registry, version, rows_file(contract, root, data), root)


def record(registry: Registry, result: DeployResult) -> None:
    """The deploy's outcome on the version (audit trail); a registry hiccup here never changes the outcome."""
    prefix = f"deploy.{result.environment}"
    try:
        registry.set_tags(result.version, {
            f"{prefix}.status": result.status, f"{prefix}.at": datetime.now(UTC).isoformat(timespec="seconds"),
            f"{prefix}.image": result.image,
            f"{prefix}.reason": None if result.ok else short_reason(f"{result.step}: {result.reason}")[:500],
        })
    except RegistryError as error:
        gha.warning(f"could not record the deploy on version {result.version}: {error}")


def redeploy(contract: Contract, version: str, environment: str, root: Path, image: str | None = None,
             golden: Path | None = None, data: Path | None = None, backend: Backend | None = None,
             github: options.GitHubTarget | None = None, rollback_from: str | None = None,
             reason: str | None = None) -> DeployResult:
    """Deploy a registered version's recorded image to `environment`, smoke-tested, and record the outcome.

    With a usable `github` target the deploy is also a GitHub deployment (deploy_record.py); with
    `rollback_from` it is recorded as the rollback from that version (always a failed deployment).
    """
    check_environment(contract, environment)
    registry = Registry.for_contract(contract)
    found = registry.get(version)
    ref = image_of(found, image)
    expected = expectations(contract, registry, found.version, root, golden, data)
    recorder = Recorder(github)
    recorder.start(registry.name, found.version, str(ref), environment, found.tags.get("git_sha"),
                   rollback_from, reason)
    with gha.group(f"deploy {registry.name} version {found.version} to {environment} ({ref})"):
        result = (backend or backend_for(contract, root))(contract, environment, ref, expected)
    record(registry, result)
    recorder.finish(result)
    return result


def report(result: DeployResult, out: Path) -> None:
    gha.write_text(out / f"deploy-{result.environment}.json", json.dumps(result.to_dict(), indent=2) + "\n")
    for name, value in (("status", result.status), ("environment-url", result.environment_url or ""),
                        ("image", result.image), ("version", result.version), ("reason", result.reason or ""),
                        ("slot", result.slot or "")):
        gha.set_output(name, value)
    markdown = summary_markdown(result)
    gha.add_summary(markdown)
    if result.ok:
        print(f"deployed version {result.version} ({result.image}) to {result.environment}: {result.environment_url}")
    else:
        gha.error(f"deploy of version {result.version} to {result.environment} failed at {result.step}: "
                  f"{result.reason}", title="deploy failed")
        if result.log_tail:
            print(f"--- the new container's last log lines ---\n{result.log_tail.rstrip()}")
        if result.undo:
            print("undone: " + "; ".join(result.undo))


def run(contract: Contract, inputs: Inputs) -> DeployResult:
    check_environment(contract, inputs.environment)
    registry = Registry.for_contract(contract)
    version = inputs.version or resolve.version_for(registry, inputs.root, inputs.pr_number, fallback_latest=False)
    result = redeploy(contract, version, inputs.environment, inputs.root, inputs.image, inputs.golden, inputs.data,
                      github=inputs.github)
    report(result, inputs.out or inputs.root / "reports")
    return result


@click.command("deploy")
@options.contract
@options.tracking_uri
@click.option("--environment", envvar="GITOPS_ML_ENVIRONMENT", default="production",
              help="a name under deploy.environments in the contract")
@click.option("--version", envvar="GITOPS_ML_VERSION", default=None,
              help="model version to deploy [default: the one tagged for --pr-number, else reports/train.json's]")
@options.github
@click.option("--image", envvar="GITOPS_ML_IMAGE", default=None,
              help="REPOSITORY@sha256:... [default: the image build-image recorded on the version]")
@options.path_option("--golden", envvar="GITOPS_ML_GOLDEN", default=None,
                     help=f"smoke expectations [default: {GOLDEN} when it is for this version, else recomputed]")
@options.data(None, "CSV for recomputed expectations [default: data/split/test.csv, else data.train]")
@options.out("reports", "folder for deploy-<environment>.json")
def cli(**given) -> int:
    """Deploy a model version's image (by digest) to an environment; smoke-test it; keep the old one on failure."""
    contract, inputs = options.build(Inputs, given)
    return 0 if run(contract, inputs).ok else 1

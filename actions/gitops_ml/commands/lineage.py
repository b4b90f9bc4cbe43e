"""`gitops-ml lineage VERSION`: the audit trail of a model version, from the registry alone.

Version -> run -> git commit and data hash -> params -> comparison -> pull request, approvers,
merge -> image -> promotion and rollback times. `--json` prints the same facts for machines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import click

from gitops_ml.commands import options
from gitops_ml.core.contract import Contract
from gitops_ml.io.registry import Registry, RegistryError, Version

CHAIN = (
    ("run", "run_id"),
    ("git commit", "git_sha"),
    ("data", "data_path"),
    ("data hash", "data_hash"),
    ("pull request", "pr_number"),
    ("verify verdict", "verify.verdict"),
    ("  against champion", "verify.champion_version"),
    ("  primary delta", "verify.primary_delta"),
    ("  candidate", "verify.candidate"),
    ("  head", "verify.head_sha"),
    ("  holdout sha256", "verify.holdout_sha256"),
    ("  verified at", "verify.at"),
    ("PR URL", "audit.pr_url"),
    ("approvers", "audit.approvers"),
    ("merged by", "audit.merged_by"),
    ("image digest", "audit.image_digest"),
    ("promoted at", "audit.promoted_at"),
    ("promoted by", "audit.promoted_by"),
    ("replaced version", "audit.replaced_version"),
    ("forced", "audit.forced"),
    ("force reason", "audit.force_reason"),
    ("retired at", "audit.retired_at"),
    ("rollback to it at", "audit.rollback_at"),
    ("rollback reason", "audit.rollback_reason"),
    ("rolled back at", "audit.rolled_back_at"),
    ("rolled back reason", "audit.rolled_back_reason"),
)


def facts(version: Version) -> dict:
    registered = (datetime.fromtimestamp(version.created_ms / 1000, UTC).isoformat(timespec="seconds")
                  if version.created_ms else None)
    params = json.loads(version.tags["params"]) if version.tags.get("params") else {}
    return {"model": version.name, "version": version.version, "aliases": list(version.aliases),
            "registered_at": registered, "run_id": version.run_id, "params": params,
            "tags": dict(sorted(version.tags.items()))}


def render(chain: dict) -> str:
    tags = {**chain["tags"], "run_id": chain["run_id"]}
    aliases = f" @{', @'.join(chain['aliases'])}" if chain["aliases"] else ""
    lines = [f"{chain['model']} version {chain['version']}{aliases} (registered {chain['registered_at']})"]
    lines += [f"  {label}: {tags[key]}" for label, key in CHAIN if tags.get(key)]
    lines += [f"  param {key}: {value}" for key, value in sorted(chain["params"].items())]
    return "\n".join(lines)


@dataclass(frozen=True)
class Inputs:
    version: str
    as_json: bool = False


def run(contract: Contract, inputs: Inputs) -> dict:
    registry = Registry.for_contract(contract)
    if inputs.version.startswith("@"):
        found = registry.by_alias(inputs.version[1:])
        if found is None:
            raise RegistryError(f"{registry.name} has no alias '{inputs.version[1:]}'; pass a version number or "
                                "an alias that exists (e.g. @champion once a model is promoted)")
    else:
        found = registry.get(inputs.version)
    chain = facts(found)
    click.echo(json.dumps(chain, indent=2) if inputs.as_json else render(chain))
    return chain


@click.command("lineage")
@options.contract
@options.tracking_uri
@click.argument("version")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def cli(**given) -> int:
    """Print the chain of a model VERSION (a number, or @ALIAS): code, data, comparison, approval, deploy."""
    contract, inputs = options.build(Inputs, given)
    run(contract, inputs)
    return 0

"""Which model version a verb acts on, when the user does not name one."""

from __future__ import annotations

import json
import os
from pathlib import Path

from gitops_ml.io.registry import Registry, RegistryError

TRAIN_REPORT = Path("reports/train.json")


def trained_version(root: Path) -> str | None:
    """The version `gitops-ml train` registered in this checkout (reports/train.json), if any."""
    path = root / TRAIN_REPORT
    if not path.is_file():
        return None
    return str(json.loads(path.read_text(encoding="utf-8")).get("version") or "") or None


def pr_version(registry: Registry, pr_number: str) -> str | None:
    """The newest version trained for pull request `pr_number` (tag `pr_number`)."""
    tagged = [v for v in registry.versions() if v.tags.get("pr_number") == str(pr_number)]
    return tagged[-1].version if tagged else None


def version_for(registry: Registry, root: Path, pr_number: str | None, fallback_latest: bool) -> str:
    version = (pr_version(registry, pr_number) if pr_number else None) or trained_version(root)
    if version is None and fallback_latest:
        latest = registry.latest()
        version = latest.version if latest else None
    if version is None:
        where = f"tagged pr_number={pr_number}, " if pr_number else ""
        raise RegistryError(
            f"no model version to use for {registry.name}: none {where}none in {TRAIN_REPORT}; "
            "pass --version (or run `gitops-ml train` first)"
        )
    return version


def actor() -> str:
    """Who is acting: the Actions actor, else the local user."""
    return os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or "unknown"

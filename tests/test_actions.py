"""Every action: a valid, secure, documented thin shim over the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

ACTIONS = sorted(p.parent for p in (ROOT / "actions").glob("*/action.yml"))
BIN = Path(sys.executable).parent


def test_every_action_is_listed():
    assert {a.name for a in ACTIONS} == {"setup", "data-check", "train", "compare", "verify", "promote", "build-image",
                                         "deploy", "drift", "retrain-pr"}


def test_action_files_and_the_ci_workflow_match_the_published_schemas():
    for schema, files in (("vendor.github-actions", [a / "action.yml" for a in ACTIONS]),
                          ("vendor.github-workflows", sorted((ROOT / ".github/workflows").glob("*.yml")))):
        result = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_actions_and_workflows_pass_zizmor_and_actionlint():
    audit = subprocess.run([str(BIN / "zizmor"), "--offline", "--no-config", "--no-progress", ".github/workflows",
                            "actions"],
                           cwd=ROOT, capture_output=True, text=True)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]
    lint = subprocess.run([str(BIN / "actionlint"), *map(str, (ROOT / ".github/workflows").glob("*.yml"))],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_inputs_reach_the_cli_only_through_env(action):
    spec = yaml.safe_load((action / "action.yml").read_text())
    assert spec["runs"]["using"] == "composite"
    for step in spec["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), f"{action.name}: an expression inside run:"


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_readme_documents_every_input_and_output(action):
    spec = yaml.safe_load((action / "action.yml").read_text())
    readme = (action / "README.md").read_text()
    for section in ("## Inputs", "## Outputs", "## Secrets"):
        assert section in readme, f"{action.name}/README.md lacks {section}"
    for kind in ("inputs", "outputs"):
        for name in spec.get(kind) or {}:
            assert re.search(rf"^\| `{re.escape(name)}` \|", readme, re.MULTILINE), \
                f"{action.name}/README.md does not document the {kind[:-1]} `{name}`"
        for name, field in (spec.get(kind) or {}).items():
            assert field.get("description"), f"{action.name}: {kind[:-1]} `{name}` has no description"


VERB_ACTIONS = [a for a in ACTIONS if a.name != "setup"]


@pytest.mark.parametrize("action", VERB_ACTIONS, ids=lambda a: a.name)
def test_every_env_the_action_passes_is_an_option_of_its_verb(action):
    """A typo in an action's env: would silently drop an input; each must name one of the verb's options."""
    import importlib

    from gitops_ml.cli import COMMANDS

    spec = yaml.safe_load((action / "action.yml").read_text())
    verb_steps = [s for s in spec["runs"]["steps"] if s.get("run", "").strip().startswith("gitops-ml ")]
    assert verb_steps, f"{action.name}: no step runs gitops-ml"
    for step in verb_steps:
        verb = step["run"].split()[1]
        command = importlib.import_module(COMMANDS[verb][0]).cli
        envvars = set()
        for param in command.params:
            envvars |= set(param.envvar if isinstance(param.envvar, list | tuple) else [param.envvar])
        passed = {name for name in step.get("env", {}) if name.startswith("GITOPS_ML_") or name == "GITHUB_TOKEN"}
        assert passed <= envvars, f"{action.name}: {sorted(passed - envvars)} are not options of `gitops-ml {verb}`"

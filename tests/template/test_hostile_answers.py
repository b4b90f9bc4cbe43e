"""Hostile answers to the template's questions are refused by name or rendered harmless: no code
runs at generation, nothing lands outside the project, and the workflows stay clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from tests.conftest import ROOT, bake

BIN = Path(sys.executable).parent


# (answer, value, what the refusal says; None: it must render harmlessly). MARKER becomes a file
# path that exists afterwards only if the answer ran code. "unsafe" is Jinja's sandbox refusing;
# "<name> = " is the pre-generation hook naming the answer.
CASES = [
    ("description", "{{ lipsum.__globals__.os.popen('touch MARKER').read() }}", "unsafe"),
    ("display_name", "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}", "unsafe"),
    ("github_repo", 'x"; import os; os.system("touch MARKER"); "', "github_repo = "),
    ("package", "x\nimport os; os.system('touch MARKER')", "package = "),
    ("author", "$(touch MARKER) `touch MARKER`", None),
    ("description", 'Quotes "double" and \'single\', a backslash \\ and <html> & more', None),
    ("description", "one line\nregistry:\n  model_name: evil", "description = "),
    ("display_name", "Model ${{ secrets.GITHUB_TOKEN }}", "Unable to render variable 'display_name'"),
    ("author", "Team $" + "{{ '{' }}{ github.token }}", "author = "),
    ("project", "../escape", "project = "),
    ("actions_ref", "v1/../../evil", "actions_ref = "),
    ("container_registry", "ghcr.io/../evil", "container_registry = "),
    ("code_owners", "@acme", "code_owners = "),
    ("code_owners", "@acme/ml-team\n* @evil", "code_owners = "),
]


@pytest.mark.parametrize(("name", "value", "refused"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_hostile_answer(tmp_path, capfd, name, value, refused):
    marker = tmp_path / "PWNED"
    value = value.replace("MARKER", str(marker))
    out = tmp_path / "out"
    if refused:
        with pytest.raises(Exception) as raised:  # noqa: PT011 - the hook, cookiecutter or Jinja's sandbox
            cookiecutter(str(ROOT), no_input=True, output_dir=str(out), extra_context={name: value})
        message = str(raised.value) + capfd.readouterr().err
        assert refused in message, message
        if refused.endswith(" = "):
            assert isinstance(raised.value, FailedHookException)
        assert not out.exists() or not any(out.iterdir()), "nothing may be generated"
    else:
        project = bake(out, **{name: value})
        recorded = json.loads((project / ".cookiecutter.json").read_text())
        assert recorded[name] == value  # kept verbatim, as data
        for workflow in (project / ".github" / "workflows").glob("*.yml"):
            assert value not in workflow.read_text(), f"free text reached {workflow.name}"
        lint = subprocess.run([str(BIN / "actionlint"), *map(str, (project / ".github/workflows").glob("*.yml"))],
                              capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout
        from gitops_ml.core.contract import load_contract

        load_contract(project / "gitops-ml.yaml")  # still a valid contract
    assert not marker.exists(), "an answer ran code at generation time"

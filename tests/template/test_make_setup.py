"""`make setup` installs gitops-ml by the commit the workflows pin, and says what to do when it cannot."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from local_extensions import template_commit
from tests.conftest import ACTIONS, ROOT, bake, free_port, run

pytestmark = pytest.mark.slow
OTHER = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return bake(tmp_path_factory.mktemp("setup"), project="setup-model")


@pytest.fixture(scope="module")
def venv(project, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("setup-venv") / ".venv"
    run(["uv", "venv", "-q", str(path)], cwd=project)
    return path


def planned_source(project: Path) -> str:
    """Where `make gitops-ml` would install gitops-ml from (make -n runs nothing)."""
    plan = run(["make", "-n", "gitops-ml"], cwd=project).stdout
    return re.search(r'uv pip install -q --no-deps "([^"]+)"', plan).group(1)


def test_gitops_ml_is_pinned_to_the_commit_of_the_workflows_setup_action(project):
    rendered = template_commit(str(ROOT))
    assert planned_source(project) == f"gitops-ml @ git+https://github.com/acme/gitops-ml@{rendered}#subdirectory=actions"
    # A Dependabot bump moves the workflows' pins; `make setup` follows the setup action's.
    workflow = project / ".github/workflows/pull-request.yml"
    original = workflow.read_text()
    try:
        workflow.write_text(original.replace(rendered, OTHER))
        assert planned_source(project) == f"gitops-ml @ git+https://github.com/acme/gitops-ml@{OTHER}#subdirectory=actions"
        workflow.unlink()  # no workflow to read: the commit the repo was rendered from
        assert rendered in planned_source(project)
    finally:
        workflow.write_text(original)


def test_an_unreachable_gitops_ml_says_what_failed_and_how_to_use_a_local_checkout(project, venv):
    address = f"127.0.0.1:{free_port()}"  # nothing listens there: refused at once, no network needed
    unreachable = f"gitops-ml @ git+http://{address}/acme/gitops-ml@{OTHER}#subdirectory=actions"
    result = subprocess.run(["make", "gitops-ml", f"VENV={venv}", f"GITOPS_ML={unreachable}"], cwd=project,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    uv_says, ours = result.stderr.split("ERROR: could not install gitops-ml from ")
    assert address in uv_says  # uv's own reason comes first
    assert ours.startswith(unreachable)
    assert f"git -C /path/to/gitops-ml checkout {template_commit(str(ROOT))}" in result.stderr
    assert "make setup GITOPS_ML=/path/to/gitops-ml/actions" in result.stderr


def test_a_local_checkout_installs(project, venv):
    run(["make", "gitops-ml", f"VENV={venv}", f"GITOPS_ML={ACTIONS}"], cwd=project)
    shown = run(["uv", "pip", "show", "--python", str(venv / "bin" / "python"), "gitops-ml"], cwd=project).stdout
    assert "Name: gitops-ml" in shown

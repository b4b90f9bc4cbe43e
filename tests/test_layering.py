"""The package's layers, enforced: core is pure, io sits at the edges, commands glue them, and the
generated serving app stands alone (its image carries no gitops-ml)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ACTIONS, ROOT

PACKAGE = ACTIONS / "gitops_ml"
SERVING = sorted((ROOT / "{{cookiecutter.project}}" / "src" / "{{cookiecutter.package}}").glob("serve*.py")) + sorted(
    (ROOT / "{{cookiecutter.project}}" / "src" / "{{cookiecutter.package}}").glob("fastpath*.py"))


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    source = path.read_text(encoding="utf-8").replace("{{ cookiecutter.package }}", "package")
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def layer_files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("core", ("gitops_ml.io", "gitops_ml.commands", "gitops_ml.cli")),
    ("io", ("gitops_ml.commands", "gitops_ml.cli")),
])
def test_lower_layers_do_not_import_higher_ones(layer, forbidden):
    offenders = {
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in layer_files(layer)
        for module in imports(path)
        if module.startswith(forbidden)
    }
    assert not offenders, sorted(offenders)


def test_core_does_no_io():
    """core reads no files, calls no services and runs no processes."""
    io_modules = ("subprocess", "httpx", "requests", "urllib.request", "docker", "mlflow", "socket", "shutil")
    offenders = {
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in layer_files("core")
        for module in imports(path)
        if module.startswith(io_modules)
    }
    assert not offenders, sorted(offenders)


def test_the_serving_app_imports_nothing_from_gitops_ml():
    assert SERVING, "serving modules not found in the template"
    offenders = {f"{path.name} imports {m}" for path in SERVING for m in imports(path) if m.startswith("gitops_ml")}
    assert not offenders, sorted(offenders)


def test_the_layering_test_sees_a_violation(tmp_path):
    """The check itself can fail: an io import inside a function body is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from gitops_ml.io import registry\n")
    assert "gitops_ml.io" in imports(bad)

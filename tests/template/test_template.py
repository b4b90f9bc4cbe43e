"""The cookiecutter template: every supported combination bakes cleanly; bad answers are refused."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter
from gitops_ml.core.contract import load_contract

from tests.conftest import ROOT, bake, need

COMBINATIONS = [
    pytest.param({"task": "classification", "deploy_target": "docker"}, id="classification-docker"),
    pytest.param({"task": "regression", "deploy_target": "kubernetes"}, id="regression-kubernetes"),
    pytest.param(
        {"task": "classification", "deploy_target": "kubernetes", "project": "fraud-2024-model-v2",
         "display_name": 'Fraud & Risk: "Model" (v2) — ünïcode, 100%'},
        id="punctuated-name-digit-slug",
    ),
    pytest.param(
        {"task": "regression", "deploy_target": "docker", "python_version": "3.11", "project": "ltv-3",
         "description": "Lifetime value: what's it worth? {braces} #hash"},
        id="regression-docker-py311",
    ),
]

COMMON_FILES = {
    ".cookiecutter.json", ".dockerignore", ".gitignore", ".dvcignore", "Dockerfile", "Makefile", "README.md",
    "dvc.yaml", "gitops-ml.yaml", "params.yaml", "pyproject.toml",
    "requirements/dev.txt", "requirements/serve.txt", "requirements/serve-compiled.in",
    "requirements/serve-compiled.txt",
    ".github/CODEOWNERS", ".github/dependabot.yml",
    ".github/workflows/ci.yml", ".github/workflows/pull-request.yml",
    ".github/workflows/merge.yml", ".github/workflows/drift.yml",
    "data/raw/.gitignore", "data/raw/customers.csv", "data/raw/customers.csv.dvc",
    "data/holdout/.gitignore", "data/holdout/holdout.csv", "data/holdout/holdout.csv.dvc",
    ".dvc/.gitignore", ".dvc/config", ".dvc/config.local",
    "tests/__init__.py", "tests/conftest.py", "tests/test_data.py", "tests/test_features.py", "tests/test_serve.py",
    "tests/test_fastpath.py", "tests/feature_shapes.py", "tests/test_monitoring.py",
}
PACKAGE_FILES = {"__init__.py", "data.py", "features.py", "train.py", "evaluate.py", "serve.py", "fastpath.py",
                 "monitoring.py", "compiled.py"}
KUBERNETES_FILES = {
    "deploy/kubernetes/README.md",
    *(f"deploy/kubernetes/base/{name}.yaml"
      for name in ("kustomization", "deployment", "service", "hpa", "pdb", "networkpolicy")),
    "deploy/kubernetes/overlays/staging/kustomization.yaml", "deploy/kubernetes/overlays/production/kustomization.yaml",
}
DOCKER_FILES = {"deploy/docker/haproxy.cfg"}
UNRENDERED = re.compile(r"{{\s*cookiecutter\.|{%\s")


def generated_files(project: Path) -> set[str]:
    return {
        str(path.relative_to(project))
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts[:1] and "/.dvc/tmp" not in str(path)
        and ".dvc/cache" not in str(path)
    }


@pytest.fixture(scope="module", params=COMBINATIONS)
def baked(request, tmp_path_factory):
    """Each combination is baked once; the tests below only read the result."""
    answers = request.param
    return bake(tmp_path_factory.mktemp("bake"), **answers), answers


def test_bakes_with_the_exact_file_set(baked):
    project, answers = baked
    package = project.name.replace("-", "_")
    expected = COMMON_FILES | {f"src/{package}/{name}" for name in PACKAGE_FILES}
    expected |= KUBERNETES_FILES if answers["deploy_target"] == "kubernetes" else DOCKER_FILES
    assert generated_files(project) == expected


def test_nothing_is_left_unrendered(baked):
    project, _ = baked
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts and path.suffix != ".csv":
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not UNRENDERED.search(text), f"unrendered template tag in {path.relative_to(project)}"


def test_yaml_and_json_files_parse_and_record_the_answers(baked):
    project, answers = baked
    for path in [*project.glob(".github/workflows/*.yml"), *project.glob("deploy/**/*.yaml"),
                 project / "gitops-ml.yaml", project / "params.yaml", project / "dvc.yaml"]:
        assert yaml.safe_load(path.read_text()) is not None, path
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    assert workflow["permissions"] == {"contents": "read"}
    recorded = json.loads((project / ".cookiecutter.json").read_text())
    questions = {k for k in json.loads((ROOT / "cookiecutter.json").read_text()) if not k.startswith("_")}
    assert set(recorded) == questions | {"_template"}  # every answer, and no local paths
    for key, value in answers.items():
        assert recorded[key] == value


def test_generated_workflows_pass_actionlint_and_zizmor(baked):
    project, _ = baked
    bin_dir = Path(sys.executable).parent
    workflows = sorted(str(p) for p in (project / ".github/workflows").glob("*.yml"))
    lint = subprocess.run([str(bin_dir / "actionlint"), *workflows], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # No config: the generated repo carries no zizmor policy that could relax a rule. `.github` covers
    # the workflows and dependabot.yml.
    audit = subprocess.run([str(bin_dir / "zizmor"), "--offline", "--no-config", "--no-progress", ".github"],
                           cwd=project,
                           capture_output=True, text=True)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]


def test_generated_workflows_pin_third_party_actions_and_limit_permissions(baked):
    project, answers = baked
    for path in (project / ".github/workflows").glob("*.yml"):
        workflow = yaml.safe_load(path.read_text())
        assert "permissions" in workflow, f"{path.name}: no top-level permissions"
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                uses = step.get("uses", "")
                if uses:  # third-party and gitops-ml actions alike: pinned by full commit SHA
                    assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), f"{path.name}: {uses} not pinned"
                assert "${{" not in step.get("run", ""), f"{path.name}: expression inside run: {step.get('run')}"


def test_python_sources_compile_and_the_contract_validates(baked):
    project, answers = baked
    from gitops_ml.core.contract import load_contract

    for path in project.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    contract = load_contract(project / "gitops-ml.yaml")
    assert contract.model.task == answers["task"]
    assert contract.deploy.target == answers["deploy_target"]
    assert contract.registry.model_name == project.name


def test_post_gen_hook_makes_a_committed_git_and_dvc_repo(baked):
    project, _ = baked
    log = subprocess.run(["git", "log", "--oneline"], cwd=project, capture_output=True, text=True, check=True)
    assert len(log.stdout.splitlines()) == 1
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True)
    assert status.stdout == ""
    tracked = subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True).stdout.split()
    assert "data/raw/customers.csv.dvc" in tracked and "data/raw/customers.csv" not in tracked
    assert ".dvc/config.local" not in tracked  # the local remote is machine-specific
    md5 = yaml.safe_load((project / "data/raw/customers.csv.dvc").read_text())["outs"][0]["md5"]
    remote = project.parent / "dvc-remotes" / project.name
    assert (remote / "files" / "md5" / md5[:2] / md5[2:]).is_file(), "the sample data was not pushed"


def test_build_and_local_outputs_are_git_ignored(baked):
    project, _ = baked
    package = project.name.replace("-", "_")
    paths = [f"src/{package}.egg-info/PKG-INFO", "reports/local/data-check/result.json", "mlflow.db"]
    ignored = subprocess.run(["git", "check-ignore", *paths], cwd=project, capture_output=True, text=True)
    assert ignored.stdout.split() == paths


def test_the_protected_holdout_is_carved_from_the_sample_pinned_and_code_owned(baked):
    project, _ = baked
    contract = load_contract(project)
    holdout = project / contract.data.holdout
    assert contract.data.holdout == "data/holdout/holdout.csv"
    assert hashlib.sha256(holdout.read_bytes()).hexdigest() == contract.data.holdout_sha256
    train, held = (pd.read_csv(project / path) for path in (contract.data.train, contract.data.holdout))
    assert len(held) == 800 and len(train) == 3200 and list(held.columns) == list(train.columns)
    tracked = subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True).stdout.split()
    assert "data/holdout/holdout.csv.dvc" in tracked and "data/holdout/holdout.csv" not in tracked
    owners = (project / ".github/CODEOWNERS").read_text()
    assert re.search(r"^data/holdout/\s+@", owners, re.MULTILINE) and re.search(r"^gitops-ml.yaml\s+@", owners, re.M)


@pytest.mark.parametrize(
    "answers, message",
    [
        ({"project": "Churn Model"}, "project = 'Churn Model': use lowercase letters, digits and single dashes"),
        ({"project": "9-lives"}, "package = '9_lives': must be a valid Python package name"),
        ({"package": "class"}, "package = 'class': must be a valid Python package name"),
        ({"actions_repo": "gitops-ml"}, "actions_repo = 'gitops-ml': must be <owner>/<repo>"),
        ({"container_registry": "GHCR.io/Acme"}, "container_registry = 'GHCR.io/Acme': a registry"),
        ({"display_name": "   "}, "display_name = '   ': give a non-empty display name"),
        ({"project": "3d-scan", "package": "scan", "deploy_target": "kubernetes"},
         "project = '3d-scan': with deploy_target kubernetes, start with a letter"),
        ({"project": "m" + "-x" * 26, "deploy_target": "kubernetes"}, "use at most 52 characters"),
    ],
    ids=["slug-with-space", "package-starting-with-digit", "package-keyword", "actions-repo-without-owner",
         "uppercase-registry", "blank-display-name", "kubernetes-name-starting-with-digit", "kubernetes-name-too-long"],
)
def test_invalid_answers_fail_in_the_pre_gen_hook(tmp_path, capfd, answers, message):
    with pytest.raises(FailedHookException):
        cookiecutter(str(ROOT), no_input=True, output_dir=str(tmp_path), extra_context=answers)
    err = capfd.readouterr().err
    assert message in err
    assert "fix these answers" in err
    assert not any(tmp_path.iterdir()), "nothing may be generated when an answer is invalid"


def test_invalid_choice_is_refused_by_cookiecutter(tmp_path):
    with pytest.raises(ValueError):
        cookiecutter(str(ROOT), no_input=True, output_dir=str(tmp_path), extra_context={"task": "clustering"})


def test_locks_are_hashed_and_cover_gitops_ml_dependencies():
    """`make setup` installs with --require-hashes and gitops-ml with --no-deps: the dev lock must
    hold every dependency gitops-ml declares, each pinned with hashes."""
    import tomllib

    from packaging.requirements import Requirement

    template = ROOT / "{{cookiecutter.project}}" / "requirements"
    for lock in ("serve.txt", "dev.txt", "serve-compiled.txt"):
        text = (template / lock).read_text()
        pins = re.findall(r"^([A-Za-z0-9_.-]+)==\S+", text, re.MULTILINE)
        assert pins and text.count("--hash=sha256:") >= len(pins), f"{lock}: a pin without a hash"
    # The compiled-model image: serve.txt's pins (same versions) without scikit-learn and what only it needs.
    pins = {lock: set(re.findall(r"^([A-Za-z0-9_.-]+==\S+)", (template / lock).read_text(), re.MULTILINE))
            for lock in ("serve.txt", "serve-compiled.txt")}
    assert pins["serve-compiled.txt"] < pins["serve.txt"]
    assert not {p.split("==")[0] for p in pins["serve-compiled.txt"]} & {"scikit-learn", "scipy", "skops"}
    locked = {re.sub(r"[-_.]+", "-", name).lower()
              for name in re.findall(r"^([A-Za-z0-9_.-]+)==", (template / "dev.txt").read_text(), re.MULTILINE)}
    declared = tomllib.loads((ROOT / "actions" / "pyproject.toml").read_text())["project"]["dependencies"]
    needed = {re.sub(r"[-_.]+", "-", Requirement(dep).name).lower() for dep in declared}
    assert needed <= locked, f"gitops-ml needs {sorted(needed - locked)}, missing from the generated dev lock"


def test_the_docker_target_ships_a_proxy_config_haproxy_accepts(baked):
    project, answers = baked
    if answers["deploy_target"] != "docker":
        assert not (project / "deploy" / "docker").exists()
        return
    check = subprocess.run([need("haproxy"), "-c", "-f", str(project / "deploy/docker/haproxy.cfg")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    from gitops_ml.core.contract import load_contract

    contract = load_contract(project / "gitops-ml.yaml")
    assert {"staging", "production"} <= set(contract.deploy.environments)

"""`gitops-ml data-check` end to end through `gitops_ml.cli.main`, in a folder laid out like a generated repo."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from gitops_ml.cli import main

from tests import template_files


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A model repository's contract and training data; GitHub Actions' files point into tmp_path."""
    root = tmp_path / "repo"
    (root / "data" / "raw").mkdir(parents=True)
    (root / "gitops-ml.yaml").write_text(template_files.contract_text("classification"), encoding="utf-8")
    shutil.copy(template_files.sample_csv("classification"), root / "data" / "raw" / "customers.csv")
    for name in ("GITHUB_ACTIONS", "MLFLOW_TRACKING_URI", *(n for n in os.environ if n.startswith("GITOPS_ML_"))):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "github-output"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step-summary.md"))
    monkeypatch.chdir(root)
    return root


def outputs(repo: Path) -> dict[str, str]:
    lines = (repo.parent / "github-output").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines)


def corrupt_ages(repo: Path) -> Path:
    path = repo / "data" / "raw" / "customers.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[5] = "240" + lines[5][lines[5].index(","):]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_clean_data_passes_and_writes_the_reports_and_outputs(repo, capsys):
    assert main(["data-check", "--no-drift"]) == 0
    out = repo / "reports" / "data-check"
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert (result["status"], result["failed"], result["data"], result["drift"]) == ("pass", 0,
                                                                                     "data/raw/customers.csv", None)
    assert {check["status"] for check in result["checks"]} == {"pass"}
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "| check | column | status | seen | expected |" in summary and "| range | age | ✅ pass |" in summary
    assert summary.strip() in (repo.parent / "step-summary.md").read_text(encoding="utf-8")
    assert outputs(repo) == {"status": "pass", "failed": "0", "report": str(out.resolve())}
    assert not (out / "drift.html").exists()
    assert "range             age" in capsys.readouterr().out  # the readable table on stdout


def test_result_json_is_deterministic(repo):
    assert main(["data-check", "--no-drift"]) == 0
    first = (repo / "reports" / "data-check" / "result.json").read_bytes()
    assert main(["data-check", "--no-drift"]) == 0
    assert (repo / "reports" / "data-check" / "result.json").read_bytes() == first


def test_bad_data_exits_1_after_writing_reports_naming_the_column(repo, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    corrupt_ages(repo)
    assert main(["data-check", "--no-drift"]) == 1
    err = capsys.readouterr().err
    assert "::error title=data-check: range (age)::column 'age': 1 value(s) outside [18, 110]" in err
    result = json.loads((repo / "reports" / "data-check" / "result.json").read_text(encoding="utf-8"))
    assert result["status"] == "fail"
    assert [(c["name"], c["column"]) for c in result["checks"] if c["status"] == "fail"] == [("range", "age")]
    assert outputs(repo)["status"] == "fail" and outputs(repo)["failed"] == "1"
    assert "| range | age | ❌ fail | min 18, max 240 | [18, 110] |" in (
        repo.parent / "step-summary.md").read_text(encoding="utf-8")


def test_inputs_arrive_through_environment_variables_as_the_action_passes_them(repo, tmp_path, monkeypatch):
    bad = corrupt_ages(repo)
    clean = tmp_path / "clean.csv"
    shutil.copy(template_files.sample_csv(), clean)
    monkeypatch.setenv("GITOPS_ML_DATA", str(clean))
    monkeypatch.setenv("GITOPS_ML_NO_DRIFT", "true")
    monkeypatch.setenv("GITOPS_ML_FAIL_ON_DRIFT", "false")
    monkeypatch.setenv("GITOPS_ML_REFERENCE", "")  # an action input left empty
    monkeypatch.setenv("GITOPS_ML_OUT", "checks")
    assert main(["data-check"]) == 0
    assert json.loads((repo / "checks" / "result.json").read_text(encoding="utf-8"))["data"] == str(clean)
    monkeypatch.setenv("GITOPS_ML_DATA", str(bad))
    assert main(["data-check"]) == 1


def test_a_contract_error_exits_2_naming_the_key(repo, capsys):
    contract = repo / "gitops-ml.yaml"
    contract.write_text(contract.read_text(encoding="utf-8").replace("min_rows: 500", "min_rows: 0"),
                        encoding="utf-8")
    assert main(["data-check", "--no-drift"]) == 2
    assert "data.min_rows" in capsys.readouterr().err
    assert not (repo / "reports").exists()


def test_a_missing_data_file_exits_2_with_what_to_do(repo, capsys):
    assert main(["data-check", "--no-drift", "--data", "data/raw/nope.csv"]) == 2
    assert "data/raw/nope.csv: the data file does not exist; pass --data" in capsys.readouterr().err


def test_a_non_csv_file_exits_1_with_a_report(repo, capsys):
    (repo / "data" / "raw" / "customers.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert main(["data-check"]) == 1  # drift is not attempted on a file that is not CSV
    assert "a PNG image, not CSV" in capsys.readouterr().err
    result = json.loads((repo / "reports" / "data-check" / "result.json").read_text(encoding="utf-8"))
    assert [c["name"] for c in result["checks"]] == ["readable"]


def test_drift_against_a_reference_warns_and_fails_only_when_asked(repo, tmp_path):
    current = tmp_path / "current.csv"
    template_files.simulate(1000, seed=3, drift=1.0).to_csv(current, index=False)
    reference = "data/raw/customers.csv"
    assert main(["data-check", "--data", str(current), "--reference", reference]) == 0
    out = repo / "reports" / "data-check"
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert result["status"] == "warn"
    assert result["drift"]["drifted"] and result["drift"]["reference"] == reference
    assert "age" in result["drift"]["drifted_columns"]
    assert (out / "drift.html").stat().st_size > 10_000
    assert "| age |" in (out / "summary.md").read_text(encoding="utf-8")

    assert main(["data-check", "--data", str(current), "--reference", reference, "--fail-on-drift"]) == 1
    assert json.loads((out / "result.json").read_text(encoding="utf-8"))["status"] == "fail"


def test_without_a_champion_drift_is_skipped_with_the_reason(repo):
    assert main(["data-check"]) == 0
    result = json.loads((repo / "reports" / "data-check" / "result.json").read_text(encoding="utf-8"))
    [drift] = [c for c in result["checks"] if c["name"] == "drift"]
    assert drift["status"] == "warn" and "no tracking database at sqlite:///mlflow.db" in drift["message"]
    assert not (repo / "mlflow.db").exists()  # looking for a champion must not create a tracking database


def test_the_champions_reference_data_is_the_default_reference(repo, tracking, tmp_path, monkeypatch):
    import mlflow
    from gitops_ml.io.reference import REFERENCE_ARTIFACT
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    name = "churn-model"
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    if not client.search_registered_models(f"name='{name}'"):
        client.create_registered_model(name)
    assert main(["data-check"]) == 0
    result = json.loads((repo / "reports" / "data-check" / "result.json").read_text(encoding="utf-8"))
    assert "has no 'champion' version" in next(c for c in result["checks"] if c["name"] == "drift")["message"]

    mlflow.set_tracking_uri(tracking)
    mlflow.set_experiment("data-check-test")
    reference = tmp_path / Path(REFERENCE_ARTIFACT).name
    shutil.copy(repo / "data" / "raw" / "customers.csv", reference)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(reference), Path(REFERENCE_ARTIFACT).parent.as_posix())
    version = client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(name, "champion", version.version)
    current = tmp_path / "current.csv"
    template_files.simulate(1000, seed=3, drift=1.0).to_csv(current, index=False)

    assert main(["data-check", "--data", str(current)]) == 0
    drift = json.loads((repo / "reports" / "data-check" / "result.json").read_text(encoding="utf-8"))["drift"]
    assert drift["reference"] == f"{name} version {version.version} (champion), run {run.info.run_id}"
    assert drift["drifted"]


def test_the_action_passes_every_input_through_env_to_an_option_of_the_command():
    import yaml
    from gitops_ml.commands.data_check import cli

    action = yaml.safe_load((template_files.ROOT / "actions" / "data-check" / "action.yml").read_text(encoding="utf-8"))
    [step] = action["runs"]["steps"]
    assert "${{" not in step["run"] and step["run"].strip() == "gitops-ml data-check"
    option_envvars = {param.envvar for param in cli.params}
    assert set(step["env"]) <= option_envvars
    passed = {value.removeprefix("${{ inputs.").removesuffix(" }}") for value in step["env"].values()}
    assert passed | {"working-directory"} == set(action["inputs"])
    assert {name: output["value"] for name, output in action["outputs"].items()} == {
        name: f"${{{{ steps.check.outputs.{name} }}}}" for name in ("status", "failed", "report")}

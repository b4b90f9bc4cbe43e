"""compare -> verify -> promote -> rollback -> lineage against a real MLflow server and the GitHub fake.

A baked classification project supplies the contract, the feature pipeline and the sample data.
Three real pipelines are registered as candidates (what pull requests' train jobs register): a
weak first champion (150 rows, heavily regularised), a better challenger (all training rows) and a
bad one (shuffled labels). Locally (`verify --candidate`), verify compares again and copies a
candidate into the production model; promote only takes versions verify made.
"""

from __future__ import annotations

import importlib.util
import json

import mlflow
import numpy as np
import pytest
import yaml
from gitops_ml.cli import main
from gitops_ml.core.contract import load_contract
from gitops_ml.core.dataset import read_typed, target_array, to_matrix
from gitops_ml.io.model_dir import log_model
from gitops_ml.io.registry import CHAMPION, PREVIOUS, Registry
from sklearn.model_selection import train_test_split

from tests.conftest import bake, mlflow_pointed_at

MODEL = "cmp-model"
CANDIDATES = f"{MODEL}-candidates"
REPO = "acme/cmp-model"


@pytest.fixture(scope="module")
def project(tmp_path_factory, mlflow_server):
    """The baked project with data/split/{train,test}.csv and three registered versions (PRs 1, 2, 3)."""
    root = bake(tmp_path_factory.mktemp("bake"), project=MODEL, task="classification")
    contract = load_contract(root)
    frame = read_typed(root / contract.data.train, contract)
    train, test = train_test_split(frame, test_size=0.25, random_state=42, stratify=frame[contract.data.target])
    (root / "data/split").mkdir(parents=True, exist_ok=True)
    train.to_csv(root / "data/split/train.csv", index=False)
    test.to_csv(root / "data/split/test.csv", index=False)

    spec = importlib.util.spec_from_file_location("features", root / "src/cmp_model/features.py")
    features = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(features)
    params = yaml.safe_load((root / "params.yaml").read_text())["train"]

    weak = train.sample(150, random_state=0)
    shuffled = np.random.default_rng(0).permutation(target_array(train, contract))
    weak_params = {**params, "logistic_regression": {"C": 0.01, "max_iter": 1000}}
    with mlflow_pointed_at(mlflow_server):
        registry = Registry.candidates(contract)
        mlflow.set_experiment(CANDIDATES)
        for pr, (rows, labels, hyper) in enumerate([(weak, target_array(weak, contract), weak_params),
                                                    (train, target_array(train, contract), params),
                                                    (train, shuffled, params)], 1):
            model = features.build_pipeline(contract, hyper).fit(to_matrix(rows, contract.data.features), labels)
            with mlflow.start_run(run_name=f"pr-{pr}"):
                info = log_model(model, contract, CANDIDATES)
            registry.set_tags(str(info.registered_model_version), {
                "git_sha": f"{pr}" * 40, "data_hash": f"md5-{len(rows)}", "data_path": contract.data.train,
                "pr_number": str(pr), "params": json.dumps({"train.estimator": params["estimator"]}),
            })
    return root


@pytest.fixture
def gitops(project, tracking, github_fake, monkeypatch, tmp_path):
    """Run `gitops-ml` in-process in the project, as in Actions: env inputs, GITHUB_OUTPUT file, a token."""
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_SHA", "GITHUB_SERVER_URL", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_TOKEN", github_fake.token)
    monkeypatch.setenv("GITHUB_ACTOR", "release-bot")
    monkeypatch.chdir(project)

    def run(*args: str) -> int:
        return main(list(args))

    run.fake, run.outputs = github_fake, tmp_path / "output"
    return run


def aliases() -> dict[str, str | None]:
    registry = Registry(mlflow.get_tracking_uri(), MODEL)
    return {alias: getattr(registry.by_alias(alias), "version", None) for alias in (CHAMPION, PREVIOUS)}


def tags(version: str) -> dict[str, str]:
    return Registry(mlflow.get_tracking_uri(), MODEL).get(version).tags


def candidate_tags(version: str) -> dict[str, str]:
    return Registry(mlflow.get_tracking_uri(), CANDIDATES).get(version).tags


def test_the_lifecycle_compare_promote_refuse_force_rollback_lineage(gitops, project, capsys):
    fake = gitops.fake
    fake.pulls[2] = {"number": 2, "html_url": f"https://github.test/{REPO}/pull/2", "merged_by": {"login": "mia"}}
    fake.reviews[2] = [{"user": {"login": "ana"}, "state": "APPROVED"},
                       {"user": {"login": "bo"}, "state": "CHANGES_REQUESTED"}]
    fake.comments[2] = [{"id": i, "body": f"review note {i}"} for i in range(1, 4)]
    fake.page_size = 2  # the sticky comment ends up on a second page

    # First champion: no champion yet, so floors, latency and fairness decide.
    assert gitops("compare", "--challenger", "1", "--pr-number", "1", "--sha", "1" * 40) == 0
    assert candidate_tags("1")["compare.verdict"] == "promote"
    assert candidate_tags("1")["compare.champion_version"] == "none"
    assert gitops("promote", "--version", "1") == 2  # compared is not verified: no production version yet
    assert gitops("verify", "--candidate", "1") == 0
    assert tags("1")["verify.verdict"] == "promote" and tags("1")["verify.candidate"] == f"{CANDIDATES}/1"
    assert "compare.verdict" not in tags("1")  # nothing the candidate carried is copied
    assert gitops("promote", "--version", "1", "--pr-number", "1", "--pr-url", "https://github.test/pr/1",
                  "--approvers", "ana", "--merged-by", "mia") == 0
    assert aliases() == {CHAMPION: "1", PREVIOUS: None}

    # Better challenger: promote verdict; compared twice -> one comment, updated in place.
    assert gitops("compare", "--challenger", "2", "--pr-number", "2", "--sha", "2" * 40) == 0
    assert "verdict=promote" in gitops.outputs.read_text()
    assert gitops("compare", "--challenger", "2", "--pr-number", "2", "--sha", "2" * 40) == 0
    sticky = [c for c in fake.comments[2] if c["body"].startswith("<!-- gitops-ml:compare -->")]
    assert len(sticky) == 1 and len(fake.comments[2]) == 4
    assert fake.calls_to("create_comment") == 2 and fake.calls_to("update_comment") == 1  # PR 1 + PR 2 once
    assert "| roc_auc |" in sticky[0]["body"] and "champion version 1" in sticky[0]["body"]
    assert "protected holdout, sha256 " in sticky[0]["body"]
    assert [s["state"] for s in fake.statuses] == ["success"] * 3
    assert {s["context"] for s in fake.statuses} == {"gitops-ml/compare"}
    report = json.loads((project / "reports/compare/compare.json").read_text())
    assert report["verdict"] == "promote" and report["champion"]["version"] == "1" and report["ci"]["low"] is not None
    assert "Intended use" in (project / "reports/compare/model-card.md").read_text()

    # Approvers, PR URL and merged-by come from GitHub when not given.
    assert gitops("verify", "--candidate", "2") == 0
    assert gitops("promote", "--version", "2", "--pr-number", "2", "--image-digest", "sha256:" + "f" * 64) == 0
    assert aliases() == {CHAMPION: "2", PREVIOUS: "1"}
    audit = tags("2")
    assert audit["audit.approvers"] == "ana" and audit["audit.merged_by"] == "mia"
    assert audit["audit.pr_url"].endswith("/pull/2") and audit["audit.replaced_version"] == "1"
    assert audit["audit.forced"] == "false" and audit["audit.promoted_by"] == "release-bot"

    # Bad challenger: reject, exit 1 after reporting; verify refuses it and copies nothing.
    assert gitops("compare", "--challenger", "3", "--pr-number", "3", "--sha", "3" * 40) == 1
    assert fake.statuses[-1]["state"] == "failure" and "verdict=reject" in gitops.outputs.read_text()
    assert "❌ **reject**" in fake.comments[3][0]["body"]
    assert gitops("verify", "--candidate", "3") == 1
    assert len(Registry(mlflow.get_tracking_uri(), MODEL).versions()) == 2

    # A version put into the production model by hand (not by verify): promote refuses it.
    registry = Registry(mlflow.get_tracking_uri(), MODEL)
    files = registry.sibling(CANDIDATES).download("3", project / "build" / "by-hand")
    by_hand = registry.adopt(files, {"compare.verdict": "promote", "compare.champion_version": "2"}).version
    capsys.readouterr()
    assert gitops("promote", "--version", by_hand) == 2
    assert "was never verified" in capsys.readouterr().err
    assert gitops("promote", "--version", by_hand, "--force") == 2
    assert aliases() == {CHAMPION: "2", PREVIOUS: "1"}

    # Forced promotion records the reason; rollback swaps back.
    assert gitops("promote", "--version", by_hand, "--force", "--reason", "incident drill INC-42") == 0
    assert aliases() == {CHAMPION: by_hand, PREVIOUS: "2"}
    assert tags(by_hand)["audit.forced"] == "true" and tags(by_hand)["audit.force_reason"] == "incident drill INC-42"
    assert gitops("rollback", "--reason", "drill over") == 0
    assert aliases() == {CHAMPION: "2", PREVIOUS: by_hand}
    assert tags("2")["audit.rollback_reason"] == "drill over"
    assert tags(by_hand)["audit.rolled_back_reason"] == "drill over"

    # Lineage: the whole chain of the champion, for people and as JSON.
    capsys.readouterr()
    assert gitops("lineage", "2") == 0
    text = capsys.readouterr().out
    for expected in ("cmp-model version 2 @champion", "git commit: " + "2" * 40, "data hash: md5-",
                     "verify verdict: promote", "against champion: 1", f"candidate: {CANDIDATES}/2", "PR URL: https://github.test/",
                     "approvers: ana", "merged by: mia", "image digest: sha256:", "promoted at: ", "run: "):
        assert expected in text, expected
    assert gitops("lineage", "@champion", "--json") == 0
    chain = json.loads(capsys.readouterr().out)
    assert chain["version"] == "2" and chain["tags"]["audit.approvers"] == "ana"


def test_a_stale_comparison_is_refused(gitops, capsys):
    """Version 1 was verified when there was no champion; today's champion differs, so verify again."""
    champion = aliases()[CHAMPION]
    capsys.readouterr()
    assert gitops("promote", "--version", "1") == 2
    assert "run `gitops-ml verify` again" in capsys.readouterr().err
    assert aliases()[CHAMPION] == champion


def test_forbidden_comment_names_the_permission_and_hides_the_token(gitops, capsys):
    gitops.fake.fail["create_comment"] = 403
    assert gitops("compare", "--challenger", "2", "--pr-number", "9", "--sha", "2" * 40) == 2
    err = capsys.readouterr().err
    assert "pull-requests: write" in err and "403" in err and gitops.fake.token not in err


def test_without_a_token_nothing_is_posted(gitops, monkeypatch, capsys):
    monkeypatch.delenv("GITHUB_TOKEN")
    assert gitops("compare", "--challenger", "2", "--pr-number", "9") in (0, 1)
    assert "not posting" in capsys.readouterr().out
    assert gitops.fake.calls == []


def test_rollback_without_a_previous_champion_is_a_clear_error(tracking, project, monkeypatch, capsys):
    contract = project / "other.yaml"
    raw = yaml.safe_load((project / "gitops-ml.yaml").read_text())
    raw["registry"]["model_name"] = "never-promoted"
    contract.write_text(yaml.safe_dump(raw))
    assert main(["rollback", "--contract", str(contract), "--reason", "oops"]) == 2
    assert "no 'previous-champion' alias" in capsys.readouterr().err

"""The GitHub deployment statuses of a deploy and of a rollback."""

from __future__ import annotations

from gitops_ml.core import deployments
from gitops_ml.core.deploy import DeployResult

IMAGE = "registry.test/churn@sha256:" + "a" * 64


def result(ok: bool, **more) -> DeployResult:
    if ok:
        return DeployResult("success", "production", "7", IMAGE, environment_url="https://churn.test", **more)
    return DeployResult("failure", "production", "7", IMAGE, environment_url="https://churn.test", step="smoke",
                        reason="POST /predict: 3 value(s) differ", **more)


def test_a_deploy_that_serves_is_a_success_with_the_environment_url():
    status = deployments.finished(result(True))
    assert (status.state, status.environment_url) == ("success", "https://churn.test")
    assert "version 7" in status.description


def test_a_failed_deploy_is_a_failure_naming_the_step_and_why():
    status = deployments.finished(result(False))
    assert status.state == "failure"
    assert status.description == "failed at smoke: POST /predict: 3 value(s) differ"


def test_a_rollback_is_a_failure_even_when_the_previous_version_serves():
    served = deployments.finished(result(True), rollback_from="8", reason="latency doubled")
    failed = deployments.finished(result(False), rollback_from="8", reason="latency doubled")
    assert served.state == failed.state == "failure"
    assert served.description == "rolled back: version 8 replaced by version 7: latency doubled"
    assert failed.description.startswith("rollback to version 7 failed at smoke, version 8 still serves")


def test_descriptions_fit_githubs_limit():
    long = result(False)
    long.reason = "x " * 500
    assert len(deployments.finished(long).description) == deployments.MAX_DESCRIPTION
    assert len(deployments.started("7", rollback_from="8" * 300).description) <= deployments.MAX_DESCRIPTION


def test_the_payload_names_the_version_and_the_image_and_for_a_rollback_what_it_replaced():
    assert deployments.payload("churn", "7", IMAGE) == {"model": "churn", "version": "7", "image": IMAGE}
    assert deployments.payload("churn", "7", IMAGE, "8", "why")["rollback_from"] == "8"
    assert deployments.description("churn", "7", "8") == "roll back churn from version 8 to version 7"


def test_only_the_deployments_that_were_live_are_replaced():
    listed = [{"id": 5}, {"id": 4}, {"id": 3}, {"id": 2}]
    latest = {4: "success", 3: "failure", 2: "inactive"}
    assert deployments.replaced(listed, latest, current=5) == [4]
    assert deployments.replaced(listed, {**latest, 5: "success"}, current=5) == [4]
    assert deployments.replaced([], {}, current=5) == []

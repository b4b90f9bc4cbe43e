"""The deploy plan (which slot, what to remove and retire), names and labels, and the result's summary."""

from __future__ import annotations

import pytest
from gitops_ml.core.deploy import (
    DeployFailed,
    DeployResult,
    Running,
    Slot,
    container_labels,
    container_name,
    drained,
    plan,
    running_from_labels,
    selector,
    summary_markdown,
)

SLOTS = ("blue", "green")


def slot(name, admin="maint", status=None, address="127.0.0.1:1"):
    return Slot(name, admin, status or {"maint": "MAINT", "ready": "UP", "drain": "DRAIN"}[admin], address)


def container(name, slot_name):
    return Running(f"id-{name}", name, slot_name, "1", "img@sha256:x")


def test_first_deploy_goes_to_the_first_slot():
    found = plan([slot("blue"), slot("green")], [], SLOTS)
    assert (found.slot, found.live, found.stale, found.retire) == ("blue", None, (), ())


@pytest.mark.parametrize(("live", "target"), [("blue", "green"), ("green", "blue")])
def test_deploys_alternate_between_slots(live, target):
    slots = [slot(name, "ready" if name == live else "maint") for name in SLOTS]
    assert plan(slots, [], SLOTS).slot == target
    assert plan(slots, [], SLOTS).live == live


def test_containers_in_the_target_slot_are_stale_and_the_others_are_retired():
    old, leftover, unlabelled = container("m-prod-blue", "blue"), container("m-prod-green", "green"), \
        container("m-prod-x", None)
    found = plan([slot("blue", "ready"), slot("green")], [old, leftover, unlabelled], SLOTS)
    assert found.slot == "green"
    assert found.stale == (leftover,)
    assert found.retire == (old, unlabelled)


def test_a_live_slot_whose_health_check_fails_is_still_the_one_replaced():
    found = plan([slot("blue", "ready", status="DOWN"), slot("green")], [], SLOTS)
    assert (found.live, found.slot) == ("blue", "green")


def test_two_enabled_slots_resolve_to_the_one_serving():
    found = plan([slot("blue", "ready", status="DOWN"), slot("green", "ready")], [], SLOTS)
    assert (found.live, found.slot) == ("green", "blue")


def test_two_serving_slots_are_refused_with_the_fix():
    with pytest.raises(DeployFailed) as failure:
        plan([slot("blue", "ready"), slot("green", "ready", address="127.0.0.1:9")], [], SLOTS)
    assert failure.value.step == "inspect"
    assert "both slots are enabled" in failure.value.reason and "green UP at 127.0.0.1:9" in failure.value.reason
    assert "state maint" in failure.value.reason


def test_a_backend_without_the_slots_is_refused():
    with pytest.raises(DeployFailed, match=r"no server\(s\) \['green'\] \(it has \['blue', 'web'\]\)"):
        plan([slot("blue"), slot("web")], [], SLOTS)


def test_drain_ends_when_idle_or_at_the_timeout():
    assert drained(0, 0.1, 30)
    assert not drained(3, 29.9, 30)
    assert drained(3, 30.0, 30)
    assert drained(1, 0.0, 0)


def test_container_names_are_valid_docker_names():
    assert container_name("churn-model", "production", "blue") == "churn-model-production-blue"
    assert container_name("Churn Model/v2", "prod", "green") == "Churn-Model-v2-prod-green"
    assert container_name("_x", "e", "s") == "x-e-s"


def test_labels_find_the_environment_and_round_trip():
    labels = container_labels("m", "prod", "blue", "3", "r@sha256:a")
    assert selector("m", "prod").items() <= labels.items()
    assert running_from_labels("id", "n", labels) == Running("id", "n", "blue", "3", "r@sha256:a")


def test_summary_of_a_failure_shows_the_step_reason_undo_and_logs():
    result = DeployResult("failure", "production", "4", "r@sha256:a", "http://x", reason="not ready", step="ready",
                          slot="green", container="m-production-green", log_tail="Traceback\nboom\n",
                          undo=["removed the new container m-production-green"])
    text = summary_markdown(result)
    assert "Deploy failed: version 4 to `production`" in text
    assert "**ready**: not ready" in text and "Undone: removed the new container" in text
    assert "```\nTraceback\nboom\n```" in text
    assert "Deployed version 4" in summary_markdown(DeployResult("success", "production", "4", "r@sha256:a"))

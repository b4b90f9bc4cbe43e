"""The Actions file protocol: outputs (multi-line safe), summaries, annotations, and no secret in any of them."""

from __future__ import annotations

import json
import re

from gitops_ml.io import gha


def read_outputs(path) -> dict[str, str]:
    """Parse GITHUB_OUTPUT as the runner does: name=value, or name<<DELIM ... DELIM."""
    lines, outputs, i = path.read_text().split("\n"), {}, 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            outputs[name] = "\n".join(lines[i + 1:end])
            i = end + 1
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
            i += 1
        else:
            i += 1
    return outputs


def test_multiline_values_survive_and_cannot_end_the_block_early(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    hostile = "line one\nEOF\nghadelimiter_x\nlast=line"
    gha.set_output("report", hostile)
    gha.set_output("version", 7)
    gha.set_output("empty", None)
    assert read_outputs(tmp_path / "out") == {"report": hostile, "version": "7", "empty": ""}
    assert re.search(r"^report<<gitops_ml_[0-9a-f]{32}$", (tmp_path / "out").read_text(), re.MULTILINE)


def test_outside_actions_outputs_are_skipped_and_nothing_breaks(monkeypatch):
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    gha.set_output("x", "y")
    gha.add_summary("# nothing")


def test_publish_writes_result_markdown_summary_and_outputs_without_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary"))
    uri = "https://bot:hunter2@mlflow.example.com"
    gha.publish(tmp_path / "r" / "result.json", {"uri": uri, "n": 1}, f"# at {uri}", tmp_path / "r" / "s.md",
                outputs={"where": uri})
    written = [tmp_path / "r" / "result.json", tmp_path / "r" / "s.md", tmp_path / "summary", tmp_path / "out"]
    for path in written:
        assert "hunter2" not in path.read_text(), path
    assert json.loads(written[0].read_text()) == {"uri": "https://***@mlflow.example.com", "n": 1}


def test_errors_become_annotations_in_actions_with_newlines_escaped(capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    gha.error("two\nlines at http://u:p@h", title="data-check: type")
    err = capsys.readouterr().err
    assert "::error title=data-check: type::two%0Alines at http://***@h" in err and "u:p@" not in err

"""GitHub Actions' file protocol: outputs, step summaries, log groups, annotations.

Outside Actions (no GITHUB_OUTPUT / GITHUB_STEP_SUMMARY) outputs are skipped and the summary is
printed, so the same commands read well on a laptop. Multi-line values use a random delimiter,
so no value can end the heredoc early.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from gitops_ml.core.redact import redact


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def set_output(name: str, value: object) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    text = "" if value is None else redact(str(value))
    with open(path, "a", encoding="utf-8") as out:
        if "\n" in text or "\r" in text:
            delimiter = f"gitops_ml_{secrets.token_hex(16)}"
            out.write(f"{name}<<{delimiter}\n{text}\n{delimiter}\n")
        else:
            out.write(f"{name}={text}\n")


def add_summary(markdown: str) -> None:
    """Append to the job summary in Actions; elsewhere the caller prints the report itself."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(redact(markdown).rstrip() + "\n\n")


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def error(message: str, title: str = "gitops-ml") -> None:
    """Print an error; in Actions also as an annotation on the run."""
    message = redact(message)
    if in_actions():
        print(f"::error title={_escape(title)}::{_escape(message)}", file=sys.stderr)
    print(f"error: {message}", file=sys.stderr)


def warning(message: str) -> None:
    message = redact(message)
    if in_actions():
        print(f"::warning::{_escape(message)}", file=sys.stderr)
    else:
        print(f"warning: {message}", file=sys.stderr)


@contextmanager
def group(title: str) -> Iterator[None]:
    """A collapsible log group in Actions; a heading elsewhere."""
    title = redact(title)
    print(f"::group::{title}" if in_actions() else f"==> {title}", flush=True)
    try:
        yield
    finally:
        if in_actions():
            print("::endgroup::", flush=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write a report file (credentials masked), creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(redact(text), encoding="utf-8")
    return path


def publish(result_path: Path, result: Mapping, markdown: str | None = None, markdown_path: Path | None = None,
            outputs: Mapping[str, object] | None = None, sort_keys: bool = False) -> None:
    """A verb's report, one way for every verb: the JSON result, the Markdown (a file and the job
    summary) and the step outputs. Everything written passes through `redact`."""
    write_text(result_path, json.dumps(result, indent=2, sort_keys=sort_keys, ensure_ascii=False, default=str) + "\n")
    if markdown is not None:
        if markdown_path is not None:
            write_text(markdown_path, markdown)
        add_summary(markdown)
    for name, value in (outputs or {}).items():
        set_output(name, value)


def log(message: str) -> None:
    """A progress line on stdout, flushed so it interleaves with subprocesses' output."""
    print(redact(message), flush=True)

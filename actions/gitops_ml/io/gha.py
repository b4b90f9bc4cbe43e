"""GitHub Actions' file protocol: outputs, step summaries, log groups, annotations.

Outside Actions (no GITHUB_OUTPUT / GITHUB_STEP_SUMMARY) outputs are skipped and the summary is
printed, so the same commands read well on a laptop. Multi-line values use a random delimiter,
so no value can end the heredoc early.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def set_output(name: str, value: object) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    text = "" if value is None else str(value)
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
            out.write(markdown.rstrip() + "\n\n")


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def error(message: str, title: str = "gitops-ml") -> None:
    """Print an error; in Actions also as an annotation on the run."""
    if in_actions():
        print(f"::error title={_escape(title)}::{_escape(message)}", file=sys.stderr)
    print(f"error: {message}", file=sys.stderr)


def warning(message: str) -> None:
    if in_actions():
        print(f"::warning::{_escape(message)}", file=sys.stderr)
    else:
        print(f"warning: {message}", file=sys.stderr)


@contextmanager
def group(title: str) -> Iterator[None]:
    """A collapsible log group in Actions; a heading elsewhere."""
    print(f"::group::{title}" if in_actions() else f"==> {title}", flush=True)
    try:
        yield
    finally:
        if in_actions():
            print("::endgroup::", flush=True)


def write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path

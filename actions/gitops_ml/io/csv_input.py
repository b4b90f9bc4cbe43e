"""Reading a dataset file for the data checks: any file, as CSV of strings, never a pandas traceback.

Everything is read as text so the checks can still see a wrong type as the value in the file. A
path that is not there is the caller's mistake (`DataFileError`, exit 2); a file that is there but
is not CSV is a data problem, reported as a failed check next to the others.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from gitops_ml.core.checks import CheckResult, check_data, duplicate_header, file_problem
from gitops_ml.core.contract import Contract
from gitops_ml.errors import GitopsMLError

SNIFF_BYTES = 8192
# Formats people often hand over instead of CSV, by their first bytes.
MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook is one)",
    b"\x1f\x8b": "gzip-compressed data",
    b"PAR1": "a Parquet file",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) workbook",
}


class DataFileError(GitopsMLError):
    """The data file is missing or cannot be opened."""


class NotCSVError(GitopsMLError):
    """The file can be opened but its content is not a CSV table."""


DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "pipes"}


def _text(path: Path) -> str:
    """The file as text; NotCSVError naming the byte offset and line of the first non-UTF-8 byte."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")  # a leading byte-order mark (Excel's "CSV UTF-8") is not a column name
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise NotCSVError(f"the file is not UTF-8 text (byte {error.start:,} on line {line}, "
                          f"{raw[error.start:error.start + 1]!r}: {error.reason}); re-save it as UTF-8") from None


def _record_lines(text: str) -> list[int]:
    """The line each data record starts on (the header is line 1), skipping blank lines as pandas does."""
    reader = csv.reader(io.StringIO(text))
    lines, previous = [], 0
    for row in reader:
        start, previous = previous + 1, reader.line_num
        if len(row) <= 1 and not "".join(row).strip():
            continue  # a blank or whitespace-only line: pandas skips it too
        lines.append(start)
    return lines[1:]  # the first record is the header


def _header(text: str) -> list[str]:
    for row in csv.reader(io.StringIO(text)):
        if len(row) > 1 or "".join(row).strip():
            return row
    return []


def _check_header(header: list[str]) -> None:
    if len(header) == 1:
        for delimiter, name in DELIMITERS.items():
            if delimiter in header[0]:
                raise NotCSVError(f"the header is one column holding {delimiter!r}: the file seems to separate "
                                  f"values with {name}, but gitops-ml reads comma-separated files; re-export it "
                                  f"with ',' as the delimiter (e.g. pandas: frame.to_csv(path, index=False))")


def duplicated_names(header: list[str]) -> dict[str, list[int]]:
    """Header names that appear more than once, with their 1-based positions."""
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(header, start=1):
        positions.setdefault(name.strip(), []).append(position)
    return {name: where for name, where in positions.items() if len(where) > 1}


def read_table(path: Path) -> tuple[pd.DataFrame, list[int], dict[str, list[int]]]:
    """The CSV at `path` as strings, the file line of each row, and duplicated header names."""
    try:
        head = path.read_bytes()[:SNIFF_BYTES] if path.is_file() else None
    except OSError as error:
        raise DataFileError(
            f"{path}: cannot read the data file ({error.strerror}); check the path and permissions"
        ) from None
    if head is None:
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataFileError(f"{path}: the data file {what}; pass --data with a CSV file (default: data.train "
                            f"in the contract), and run `dvc pull` if the data is tracked by DVC")
    if not head.strip():
        raise NotCSVError("the file is empty; expected a CSV file with a header row and data rows")
    for magic, kind in MAGIC.items():
        if head.startswith(magic):
            raise NotCSVError(f"the file is {kind}, not CSV text")
    if b"\x00" in head:
        raise NotCSVError("the file holds binary data (NUL bytes), not CSV text")
    text = _text(path)
    try:
        header = _header(text)
        _check_header(header)
        frame = pd.read_csv(io.StringIO(text), dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise NotCSVError(f"the file is not well-formed CSV ({reason})") from None
    lines = _record_lines(text)
    if len(lines) != len(frame):  # a layout the two parsers see differently: fall back to counting rows
        lines = list(range(2, len(frame) + 2))
    return frame, lines, duplicated_names(header)


def read_strings(path: Path) -> pd.DataFrame:
    """The CSV at `path` with every value a string (or missing), columns as in the file."""
    return read_table(path)[0]


def check_file(path: Path, contract: Contract) -> tuple[pd.DataFrame | None, list[CheckResult]]:
    """Read and check a data file: the table (None when it is not CSV) and the check results."""
    try:
        frame, lines, duplicated = read_table(path)
    except NotCSVError as error:
        return None, [file_problem(str(path), str(error))]
    if duplicated:
        return None, [duplicate_header(str(path), duplicated)]
    return frame, check_data(frame, contract, lines)

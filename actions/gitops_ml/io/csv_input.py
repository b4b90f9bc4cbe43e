"""Reading a dataset file for the data checks: any file, as CSV of strings, never a pandas traceback.

Everything is read as text so the checks can still see a wrong type as the value in the file. A
path that is not there is the caller's mistake (`DataFileError`, exit 2); a file that is there but
is not CSV is a data problem, reported as a failed check next to the others.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from gitops_ml.core.checks import CheckResult, check_data, file_problem
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


def read_strings(path: Path) -> pd.DataFrame:
    """The CSV at `path` with every value a string (or missing), columns as in the file."""
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
    try:
        return pd.read_csv(path, dtype=str, encoding="utf-8")
    except UnicodeDecodeError as error:
        raise NotCSVError(f"the file is not UTF-8 text (byte {error.start}: {error.reason})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise NotCSVError(f"the file is not well-formed CSV ({reason})") from None


def check_file(path: Path, contract: Contract) -> tuple[pd.DataFrame | None, list[CheckResult]]:
    """Read and check a data file: the table (None when it is not CSV) and the check results."""
    try:
        frame = read_strings(path)
    except NotCSVError as error:
        return None, [file_problem(str(path), str(error))]
    return frame, check_data(frame, contract)

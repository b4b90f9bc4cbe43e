"""Credentials never reach a report, a summary, an artifact or a log line.

A tracking URI such as `https://user:secret@mlflow.example.com` or `postgresql://u:p@db/mlflow`
is shown as `https://***@mlflow.example.com`; secret-looking query parameters lose their values.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_SECRET_PARAM = re.compile(
    r"(?i)(?P<key>[?&;][\w.-]*?(?:password|passwd|pwd|token|secret|api_?key|credential|sig|signature)=)[^&;#\s]+")


def redact(text: str | None) -> str | None:
    """`text` with every URL's user:password and every secret-looking query value masked."""
    if not text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['scheme']}***@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}***", text)

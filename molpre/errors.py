"""One way to turn an exception into the one-line reason that error rows and messages carry."""

from __future__ import annotations


def first_line(err: BaseException, limit: int | None = None) -> str:
    """The first non-empty line of ``str(err)`` (at most ``limit`` characters), or the
    exception's type name when its message is empty."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    text = lines[0].strip() if lines else type(err).__name__
    return text[:limit] if limit else text

"""The one error every front end understands: a refused or failed request, with a code each
front end maps to its own status (gRPC here, HTTP for the web console)."""

from __future__ import annotations

from typing import NoReturn

from .core.validate import text


class ApiError(Exception):
    """code: invalid | not_found | exists | conflict | busy | unavailable | disk_full |
    denied | unauthenticated."""

    def __init__(self, code: str, message: str) -> None:
        message = text(message, 2000)  # it travels in a gRPC header (16 KiB at most)
        super().__init__(message)
        self.code = code
        self.message = message


def fail(code: str, message: str) -> NoReturn:
    raise ApiError(code, message)

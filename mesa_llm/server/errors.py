"""The one error the API raises for a request it refuses: an HTTP status and one line."""

from __future__ import annotations


def one_line(text: object, limit: int = 500) -> str:
    """``text`` on one line (newlines and runs of spaces folded), at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class ApiError(Exception):
    """A refused request: answered as ``{"error": message}`` with ``status`` (over a WebSocket,
    as an ``error`` message)."""

    def __init__(self, status: int, message: str) -> None:
        """``message`` is folded to one line."""
        self.status = status
        self.message = one_line(message)
        super().__init__(self.message)


__all__ = ["ApiError", "one_line"]

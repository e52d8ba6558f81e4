"""Where container logs live in the state dir (the kubelet writes them, the API serves them)."""

from __future__ import annotations

from pathlib import Path


def container_log_path(
    state_dir: Path, namespace: str, pod: str, container: str, previous: bool = False
) -> Path:
    """The log file of one container (of its previous run with `previous`)."""
    suffix = ".previous.log" if previous else ".log"
    return state_dir / "logs" / namespace / pod / f"{container}{suffix}"


def tail(text: bytes, lines: int | None) -> bytes:
    """The last `lines` lines of a log (all when None)."""
    if lines is None:
        return text
    if lines <= 0:
        return b""
    parts = text.splitlines(keepends=True)
    return b"".join(parts[-lines:])

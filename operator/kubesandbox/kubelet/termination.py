"""Termination messages as the kubelet reads them when a container exits.

Each container run gets its own empty host file standing in for `terminationMessagePath`
(the path is rewritten in command, args and env like a volume's mountPath). When the
container exits, the file's last 4096 bytes become `state.terminated.message`; with
`terminationMessagePolicy: FallbackToLogsOnError`, an empty file and a non-zero exit code
take the log's tail instead (the last 80 lines, cut to their first 2048 bytes), as kubelet
does.
"""

from __future__ import annotations

from pathlib import Path

from kubesandbox.logs import tail
from kubesandbox.objects import Obj

DEFAULT_PATH = "/dev/termination-log"
FILE, FALLBACK_TO_LOGS = "File", "FallbackToLogsOnError"
MAX_MESSAGE_BYTES = 4096
MAX_LOG_LINES = 80
MAX_LOG_BYTES = 2048
_BLOCK = 64 * 1024


def message_file(pod_dir: Path, container: str) -> Path:
    """The host file of one container's termination message, under the pod's directory."""
    return pod_dir / "containers" / container / "termination-log"


def container_path(container: Obj) -> str:
    """The container's `terminationMessagePath` (kube's default when unset)."""
    return str(container.get("terminationMessagePath") or DEFAULT_PATH)


def fresh(path: Path) -> Path:
    """Create `path` empty for a new run of its container (no message from an earlier run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _last_bytes(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - limit))
            return handle.read()
    except OSError:
        return b""


def _last_lines(path: Path, count: int) -> bytes:
    """The last `count` lines of a file, read backwards in blocks (logs can be large)."""
    try:
        with path.open("rb") as handle:
            end = handle.seek(0, 2)
            data = b""
            while end > 0 and data.count(b"\n") <= count:
                start = max(0, end - _BLOCK)
                handle.seek(start)
                data = handle.read(end - start) + data
                end = start
    except OSError:
        return b""
    return tail(data, count)


def message(container: Obj, path: Path, log: Path, exit_code: int) -> str:
    """The termination message of a container run that exited with `exit_code`."""
    written = _last_bytes(path, MAX_MESSAGE_BYTES)
    policy = container.get("terminationMessagePolicy") or FILE
    if written or policy != FALLBACK_TO_LOGS or exit_code == 0:
        return written.decode(errors="replace")
    return _last_lines(log, MAX_LOG_LINES)[:MAX_LOG_BYTES].decode(errors="replace")

"""Argo CD's resource health checks, run as Argo CD runs them: the chart's Lua files in Lua
5.1 (Argo CD's gopher-lua) with only the libraries Argo CD opens (base, package, table and a
reduced os; no string, math or io library, so `("x"):len()` fails too), the resource as the
global `obj`, and the result checked the way Argo CD checks it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lupa import lua51

from support.helmchart import CHART

HEALTH_DIR = CHART / "files" / "health"
HEALTH_STATUSES = frozenset(
    {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
)
GROUP = "bigmodel.dev"
KINDS = ("BigModelJob", "BigModelService")

_ARGO_LIBRARIES = """
debug.setmetatable("", nil)
local time, date, clock = os.time, os.date, os.clock
string, math, io, debug, coroutine = nil, nil, nil, nil, nil
os = {time = time, date = date, clock = clock}
"""
"""Leaves what Argo CD's Lua VM has: its health scripts cannot use the rest."""


def script_path(kind: str) -> Path:
    """The chart's health check of `kind`."""
    return HEALTH_DIR / f"{kind.lower()}.lua"


def config_key(kind: str) -> str:
    """The argocd-cm key Argo CD reads the health check of `kind` from."""
    return f"resource.customizations.health.{GROUP}_{kind}"


def health(script: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The health status and message the Lua `script` returns for `obj`; fails as Argo CD
    does on anything but a table with a known status."""
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    lua.execute(_ARGO_LIBRARIES)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    assert lua51.lua_type(result) == "table", f"expect table output from Lua script, not {result}"
    found = dict(result.items())
    assert set(found) <= {"status", "message"}, found
    assert found.get("status") in HEALTH_STATUSES, f"Lua returned an invalid health status {found}"
    return {"status": str(found["status"]), "message": str(found.get("message", ""))}

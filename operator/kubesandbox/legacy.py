"""The names the sandbox carried before it was a product of its own, still recognised for
one release: annotations, labels and the taint under `sandbox.bigmodel.dev/` (now
`kubesandbox.dev/`) and the `BIGMODEL_SANDBOX_*` variables (now `KUBESANDBOX_*`). Each use
of an old name logs one deprecation warning. This is the one module that spells them."""

from __future__ import annotations

import logging
from collections.abc import Mapping

DOMAIN = "kubesandbox.dev/"
ENV_PREFIX = "KUBESANDBOX_"
_OLD_DOMAIN = "sandbox.bigmodel.dev/"
_OLD_ENV_PREFIX = "BIGMODEL_SANDBOX_"

log = logging.getLogger(__name__)
_warned: set[str] = set()


def old_name(name: str) -> str | None:
    """The deprecated spelling of one of the sandbox's names; None for any other name."""
    for new, old in ((DOMAIN, _OLD_DOMAIN), (ENV_PREFIX, _OLD_ENV_PREFIX)):
        if name.startswith(new):
            return old + name.removeprefix(new)
    return None


def spellings(name: str) -> tuple[str, ...]:
    """`name` and, for one of the sandbox's names, its deprecated spelling."""
    old = old_name(name)
    return (name,) if old is None else (name, old)


def warn_old(used: str, name: str) -> None:
    """Log once per process that `used` is the deprecated spelling of `name`."""
    if used != name and used not in _warned:
        _warned.add(used)
        log.warning("%s is deprecated and goes in the next release: use %s", used, name)


def lookup(values: Mapping[str, str], name: str) -> str | None:
    """`values[name]`, else the value under its deprecated spelling (with a warning)."""
    for spelling in spellings(name):
        if spelling in values:
            warn_old(spelling, name)
            return values[spelling]
    return None


def with_old_names(values: Mapping[str, str]) -> dict[str, str]:
    """`values` plus each of the sandbox's names under its deprecated spelling too (labels
    and variables that users' selectors and programs may still read)."""
    return {old: value for name, value in values.items() if (old := old_name(name))} | dict(values)

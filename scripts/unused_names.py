"""Fail when a module-level name of the product is used nowhere in the product: a function,
class or constant that only tests (or nothing) use is dead code. Names are matched as words
in the product's sources, the chart, the images and pyproject.toml (entry points); a name
registered by a decorator (kopf handlers, pydantic validators) counts as used.

Run by `make lint`: `python scripts/unused_names.py`."""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ROOT / "operator" / "bigmodel"
ALSO_READ = [
    ROOT / "pyproject.toml",
    *ROOT.glob("images/**/Dockerfile"),
    *ROOT.glob("charts/**/*.yaml"),
]
USED_FROM_OUTSIDE = {
    "dask_setup": "Dask's preload hook: Dask calls it by name",
    "METRIC_NAMES": "the runtime's metrics contract, the chart's recording rules are checked on",
}


def defined(tree: ast.Module) -> list[str]:
    """Module-level functions, classes and constants that no decorator registers."""
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if not node.decorator_list or isinstance(node, ast.ClassDef):
                names.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()]
    return [n for n in names if not (n.startswith("__") and n.endswith("__"))]


def main() -> int:
    sources = {path: path.read_text() for path in PRODUCT.rglob("*.py")}
    words: Counter[str] = Counter()
    for text in [*sources.values(), *(p.read_text() for p in ALSO_READ)]:
        words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    unused = [
        f"{path.relative_to(ROOT)}: {name}"
        for path, text in sorted(sources.items())
        for name in defined(ast.parse(text))
        # its definition is the one use
        if words[name] < 2 and name not in USED_FROM_OUTSIDE
    ]
    for line in unused:
        print(f"{line} is used nowhere in the product (tests only, or nothing): remove it")
    return 1 if unused else 0


if __name__ == "__main__":
    sys.exit(main())

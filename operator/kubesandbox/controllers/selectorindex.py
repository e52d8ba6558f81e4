"""Which equality selectors (a Service's `spec.selector`) pick a set of labels, found without
looking at every selector: each is filed under one of its label pairs, and an object's labels
name the only buckets that can hold a selector matching it."""

from __future__ import annotations

from collections.abc import Mapping

Key = tuple[str, str]
"""(namespace, name) of the selecting object."""
Bucket = tuple[str, str, str]
"""(namespace, label, value)."""


class SelectorIndex:
    """Selectors by namespace; a selector is filed under the pair of its labels whose bucket
    held the fewest selectors when it was added, so that a pair most selectors share (e.g.
    `app.kubernetes.io/managed-by`) does not gather them all."""

    def __init__(self) -> None:
        self._selectors: dict[Key, tuple[dict[str, str], Bucket]] = {}
        self._buckets: dict[Bucket, set[Key]] = {}

    def put(self, key: Key, selector: Mapping[str, str]) -> None:
        """File (or re-file) the selector of `key`; an empty one selects nothing."""
        self.remove(key)
        if not selector:
            return
        bucket = min(
            ((key[0], label, value) for label, value in sorted(selector.items())),
            key=lambda b: len(self._buckets.get(b, ())),
        )
        self._selectors[key] = (dict(selector), bucket)
        self._buckets.setdefault(bucket, set()).add(key)

    def remove(self, key: Key) -> None:
        """Forget the selector of `key`."""
        found = self._selectors.pop(key, None)
        if found is None:
            return
        keys = self._buckets[found[1]]
        keys.discard(key)
        if not keys:
            del self._buckets[found[1]]

    def matching(self, namespace: str, labels: Mapping[str, str]) -> set[Key]:
        """The keys whose selector picks an object of `namespace` with these labels."""
        out: set[Key] = set()
        for label, value in labels.items():
            for key in self._buckets.get((namespace, label, value), ()):
                selector = self._selectors[key][0]
                if all(labels.get(k) == v for k, v in selector.items()):
                    out.add(key)
        return out

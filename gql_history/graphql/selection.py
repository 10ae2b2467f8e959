"""Which fields a query selects below the current one, so resolvers build only
those: cursors, page-flag probes and counts cost work nobody may ask for."""

from __future__ import annotations

from collections.abc import Iterable

from strawberry.types.nodes import FragmentSpread, InlineFragment, Selection


def selected_paths(selections: Iterable[Selection], depth: int = 2) -> frozenset[str]:
    """Dotted names (``edges.cursor``) of the fields in ``selections``, ``depth``
    levels deep, through fragments; fields skipped by ``@skip``/``@include``
    are left out."""
    paths: set[str] = set()
    _collect(selections, "", depth, paths)
    return frozenset(paths)


def _collect(
    selections: Iterable[Selection], prefix: str, depth: int, paths: set[str]
) -> None:
    for selection in selections:
        if not _included(selection.directives):
            continue
        if isinstance(selection, FragmentSpread | InlineFragment):
            _collect(selection.selections, prefix, depth, paths)
            continue
        path = prefix + selection.name
        paths.add(path)
        if depth > 1:
            _collect(selection.selections, path + ".", depth - 1, paths)


def _included(directives: dict[str, dict[str, object]]) -> bool:
    if directives.get("skip", {}).get("if") is True:
        return False
    return directives.get("include", {}).get("if") is not False

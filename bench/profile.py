"""Summaries of py-spy's raw (collapsed stack) profiles: where the time goes."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

#: Layers a frame's file belongs to, first match wins.
LAYERS = (
    ("gql_history", re.compile(r"(^|/)gql_history/")),
    ("strawberry", re.compile(r"(^|/)strawberry/")),
    ("graphql-core", re.compile(r"(^|/)graphql/")),
    ("sqlalchemy", re.compile(r"(^|/)sqlalchemy/")),
    ("asyncpg", re.compile(r"(^|/)asyncpg/")),
    ("pydantic", re.compile(r"(^|/)pydantic(_core)?/")),
    ("fastapi", re.compile(r"(^|/)fastapi/")),
    ("starlette", re.compile(r"(^|/)starlette/")),
    ("uvicorn+h11", re.compile(r"(^|/)(uvicorn|h11)/")),
    ("fluid", re.compile(r"(^|/)fluid/")),
    ("json", re.compile(r"(^|/)json/")),
    ("asyncio", re.compile(r"(^|/)asyncio/")),
)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+)(:\d+)?\)$")


def _layer(file: str) -> str:
    for name, pattern in LAYERS:
        if pattern.search(file):
            return name
    return "other"


def summarize(path: Path, top: int = 15) -> dict[str, Any]:
    """Inclusive share of each layer and the functions with most self time."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        if any("_find_and_load" in f for f in frames):
            continue  # imports at start-up
        total += count
        layers = set()
        for frame in frames:
            match = _FRAME.match(frame)
            layers.add(_layer(match["file"]) if match else "other")
        for layer in layers:
            inclusive[layer] += count
        last = frames[-1] if frames else "?"
        match = _FRAME.match(last)
        name = f"{match['func']} ({Path(match['file']).name})" if match else last
        leaf[name] += count
    if not total:
        return {"samples": 0, "inclusive": {}, "self": {}}
    return {
        "samples": total,
        "inclusive": {k: round(100 * v / total, 1) for k, v in inclusive.most_common()},
        "self": {k: round(100 * v / total, 1) for k, v in leaf.most_common(top)},
    }


def summarize_dir(directory: Path) -> dict[str, Any]:
    """A summary per profile file in ``directory``."""
    return {p.stem: summarize(p) for p in sorted(directory.glob("*.txt"))}

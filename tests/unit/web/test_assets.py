"""The vendored browser assets: what ``make assets`` pinned is what is on
disk, every library ships its licence, and no page of ours names another
host."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gql_history.web.pages import STATIC_DIR
from scripts.vendor_assets import MANIFEST, PACKAGES, VENDOR_DIR, sha256

TEMPLATES = STATIC_DIR.parent / "templates"
#: An address a browser would fetch from: a URL with a host.
_REMOTE = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.IGNORECASE)


def manifest() -> dict[str, dict[str, object]]:
    packages: dict[str, dict[str, object]] = json.loads(MANIFEST.read_text())[
        "packages"
    ]
    return packages


def test_assets_manifest_matches_the_pins() -> None:
    """A pin changed without `make assets` (or the reverse) fails here."""
    assert {name: entry["version"] for name, entry in manifest().items()} == {
        package.name: package.version for package in PACKAGES
    }


def test_assets_on_disk_are_the_manifest_files() -> None:
    """An asset edited, added or removed by hand fails here."""
    recorded = {
        path: digest
        for entry in manifest().values()
        for path, digest in entry["files"].items()  # type: ignore[attr-defined]
    }
    on_disk = {
        str(path.relative_to(VENDOR_DIR)): sha256(path)
        for path in VENDOR_DIR.rglob("*")
        if path.is_file() and path != MANIFEST
    }
    assert on_disk == recorded


def test_assets_each_package_ships_a_licence() -> None:
    for name, entry in manifest().items():
        files = entry["files"]
        assert isinstance(files, dict)
        assert any("LICENSE" in Path(path).name for path in files), name


def test_assets_pages_name_no_other_host() -> None:
    """Our templates, scripts and styles load everything from the package."""
    ours = [
        path
        for folder in (TEMPLATES, STATIC_DIR)
        for path in folder.rglob("*")
        if path.is_file() and VENDOR_DIR not in path.parents
    ]
    assert len(ours) >= 6
    remote = {
        str(path.name): _REMOTE.findall(path.read_text(encoding="utf-8"))
        for path in ours
    }
    # an SVG's namespace is a name, not a request
    remote = {
        name: [url for url in urls if "www.w3.org" not in url]
        for name, urls in remote.items()
    }
    assert {name: urls for name, urls in remote.items() if urls} == {}

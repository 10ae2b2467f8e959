"""Regenerate the browser assets vendored in ``gql_history/web/static/vendor``
from the npm registry: ``make assets`` (``python -m scripts.vendor_assets``).

Each package below is fetched at its pinned version with ``npm pack`` (npm
checks the tarball against the registry's integrity hash), the files named
are copied out of it with their licence files, flattened into
``vendor/<package>/``, and ``manifest.json`` records every package's version
and tarball integrity and every file's SHA-256. The tests compare that
manifest with the pins here and with the files on disk, so an asset edited
by hand, or a pin changed without regenerating, fails CI.

To upgrade a library: change its version here, run ``make assets``, then try
the pages in a browser (``make test`` drives them in Chromium).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = ROOT / "gql_history" / "web" / "static" / "vendor"
MANIFEST = VENDOR_DIR / "manifest.json"


@dataclass(frozen=True, slots=True)
class Package:
    """An npm package vendored at a pinned version: the files copied out of
    its tarball (paths inside it) and its licence files."""

    name: str
    version: str
    files: tuple[str, ...] = ()
    licences: tuple[str, ...] = ("LICENSE",)
    #: Why it is vendored, for the manifest's reader.
    purpose: str = ""
    #: Files whose licence text comes from another vendored package (the
    #: tarball ships none of its own), by that package's name.
    licence_from: str | None = None
    #: Exact replacements in a copied file (name, old, new), each required to
    #: match once: only to keep a page from reaching another host.
    patches: tuple[tuple[str, str, str], ...] = ()

    @property
    def folder(self) -> str:
        """Its folder under ``vendor/``: the name without its npm scope."""
        return self.name.rsplit("/", 1)[-1]


PACKAGES: tuple[Package, ...] = (
    Package(
        "react",
        "18.2.0",
        ("umd/react.production.min.js",),
        purpose="GraphiQL",
    ),
    Package(
        "react-dom",
        "18.2.0",
        ("umd/react-dom.production.min.js",),
        purpose="GraphiQL",
    ),
    Package(
        "graphiql",
        "3.8.3",
        ("graphiql.min.js", "graphiql.min.css"),
        purpose="GraphiQL",
    ),
    Package(
        "@graphiql/plugin-explorer",
        "1.0.2",
        ("dist/index.umd.js", "dist/style.css"),
        licences=(),
        licence_from="graphiql",  # the same MIT licence, from the same repository
        purpose="GraphiQL's query explorer",
    ),
    Package(
        "swagger-ui-dist",
        "5.35.0",
        ("swagger-ui-bundle.js", "swagger-ui.css"),
        licences=("LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"),
        purpose="/docs",
    ),
    Package(
        "redoc",
        "2.5.4",
        ("bundles/redoc.standalone.js",),
        licences=("LICENSE", "bundles/redoc.standalone.js.LICENSE.txt"),
        purpose="/redoc",
        # its side menu's logo, fetched unconditionally from Redocly's CDN
        patches=(
            (
                "redoc.standalone.js",
                "https://cdn.redoc.ly/redoc/logo-mini.svg",
                "data:image/svg+xml,%3Csvg xmlns=%27http://www.w3.org/2000/svg%27/%3E",
            ),
        ),
    ),
    Package(
        "htm",
        "3.1.1",
        ("preact/standalone.module.js",),
        purpose="the dashboard: Preact, its hooks and htm in one ES module",
    ),
    Package(
        "preact",
        "10.29.8",
        licences=("LICENSE",),
        purpose="the licence of the Preact bundled in htm's standalone module",
    ),
    Package(
        "uplot",
        "1.6.32",
        ("dist/uPlot.iife.min.js", "dist/uPlot.min.css"),
        purpose="the dashboard's chart",
    ),
    Package(
        "graphql-ws",
        "6.4.2",
        ("umd/graphql-ws.min.js",),
        licences=("LICENSE.md",),
        purpose="the dashboard's live updates (graphql-transport-ws)",
    ),
)


def sha256(path: Path) -> str:
    """The hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pack(package: Package, workdir: Path) -> tuple[Path, str]:
    """``npm pack`` the pinned version into ``workdir``: its tarball and
    integrity."""
    spec = f"{package.name}@{package.version}"
    output = subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (info,) = json.loads(output)
    return workdir / info["filename"], info["integrity"]


def _extract(tarball: Path, members: tuple[str, ...], into: Path) -> list[str]:
    """Copy ``members`` (paths inside the package) flat into ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    names = []
    with tarfile.open(tarball) as archive:
        for member in members:
            source = archive.extractfile(f"package/{member}")
            if source is None:
                raise SystemExit(f"{tarball.name} has no file {member}")
            name = Path(member).name
            (into / name).write_bytes(source.read())
            names.append(name)
    return names


def _patch(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    if text.count(old) != 1:
        raise SystemExit(f"{path.name}: expected {old!r} once, found {text.count(old)}")
    path.write_text(text.replace(old, new), encoding="utf-8")


def regenerate() -> dict[str, object]:
    """Fetch every package and rewrite ``vendor/`` and its manifest."""
    shutil.rmtree(VENDOR_DIR, ignore_errors=True)
    VENDOR_DIR.mkdir(parents=True)
    entries: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for package in PACKAGES:
            tarball, integrity = _pack(package, Path(tmp))
            folder = VENDOR_DIR / package.folder
            names = _extract(tarball, package.files + package.licences, folder)
            for name, old, new in package.patches:
                _patch(folder / name, old, new)
            if package.licence_from is not None:
                source = next(p for p in PACKAGES if p.name == package.licence_from)
                for licence in source.licences:
                    shutil.copy(VENDOR_DIR / source.folder / Path(licence).name, folder)
                    names.append(Path(licence).name)
            entries[package.name] = {
                "version": package.version,
                "integrity": integrity,
                "purpose": package.purpose,
                "patched": [
                    f"{name}: {old} -> {new}" for name, old, new in package.patches
                ],
                "files": {
                    f"{package.folder}/{name}": sha256(folder / name)
                    for name in sorted(names)
                },
            }
    manifest = {"generated_by": "make assets", "packages": entries}
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main() -> None:
    manifest = regenerate()
    packages = manifest["packages"]
    assert isinstance(packages, dict)
    total = sum(p.stat().st_size for p in VENDOR_DIR.rglob("*") if p.is_file())
    print(
        f"Vendored {len(packages)} packages into {VENDOR_DIR.relative_to(ROOT)} "
        f"({total / 1024:.0f} KiB)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

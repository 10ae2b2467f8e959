"""Generate the typed clients of the history API from a schema and the
operations in examples/queries: Python with ariadne-codegen, TypeScript with
graphql-codegen.

    python -m examples.clients.generate [SCHEMA]    # default: schema.graphql

ariadne-codegen 0.19 needs graphql-core < 3.3, and Strawberry needs 3.3, so it
runs in a virtualenv of its own, ``.gql-history/codegen-venv``; graphql-codegen comes
from npm, pinned by examples/clients/typescript/package-lock.json. What they
generate goes into ``generated/`` directories, which git ignores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "examples" / "clients"
PYTHON_CLIENT = CLIENTS / "python"
TYPESCRIPT_CLIENT = CLIENTS / "typescript"
CODEGEN_VENV = ROOT / ".gql-history" / "codegen-venv"
ARIADNE_CODEGEN = "ariadne-codegen==0.19.0"

#: What npm and pip say when they cannot reach their registry.
_OFFLINE = re.compile(
    r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|ENETUNREACH"
    r"|Failed to establish a new connection|Temporary failure in name resolution"
    r"|Failed to fetch|Could not connect|No matching distribution found"
)


class CodegenError(RuntimeError):
    """Raised when a tool fails; the message ends with what it printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(f"{message}\n{output}" if output else message)
        self.output = output


class ToolUnavailableError(CodegenError):
    """Raised when npm is missing, or a package registry cannot be reached."""


def python_client(schema: Path) -> Path:
    """Generate the Python client package; return its directory."""
    ariadne_codegen = _codegen_venv() / "bin" / "ariadne-codegen"
    config = (PYTHON_CLIENT / "codegen.toml").read_text()
    config, found = re.subn(
        r"^schema_path = .*$",
        f"schema_path = {json.dumps(str(schema.resolve()))}",
        config,
        flags=re.MULTILINE,
    )
    if found != 1:
        raise RuntimeError("codegen.toml must set schema_path on one line")
    target = PYTHON_CLIENT / "generated"
    shutil.rmtree(target / "history_client", ignore_errors=True)
    target.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        config_file = Path(tmp) / "codegen.toml"
        config_file.write_text(config)
        _run([ariadne_codegen, "--config", config_file], cwd=PYTHON_CLIENT)
    return target / "history_client"


def typescript_client(schema: Path) -> Path:
    """Generate and compile the TypeScript client; return its ``generated/``."""
    npm = shutil.which("npm")
    if npm is None:
        raise ToolUnavailableError("npm is not installed (the TypeScript client)")
    installed = TYPESCRIPT_CLIENT / "node_modules" / ".package-lock.json"
    lock = TYPESCRIPT_CLIENT / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        _install([npm, "ci", "--no-audit", "--no-fund"], cwd=TYPESCRIPT_CLIENT)
    env = {**os.environ, "GQL_HISTORY_SCHEMA": str(schema.resolve())}
    _run([npm, "run", "--silent", "codegen"], cwd=TYPESCRIPT_CLIENT, env=env)
    _run([npm, "run", "--silent", "build"], cwd=TYPESCRIPT_CLIENT)
    return TYPESCRIPT_CLIENT / "generated"


def _codegen_venv() -> Path:
    """The virtualenv running ariadne-codegen, created on first use."""
    marker = CODEGEN_VENV / ".requirement"
    if marker.exists() and marker.read_text() == ARIADNE_CODEGEN:
        return CODEGEN_VENV
    shutil.rmtree(CODEGEN_VENV, ignore_errors=True)
    python = CODEGEN_VENV / "bin" / "python"
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():
        _run([uv, "venv", "-q", "--python", sys.executable, CODEGEN_VENV], cwd=ROOT)
        _install([uv, "pip", "install", "-q", "--python", python, ARIADNE_CODEGEN])
    else:
        _run([sys.executable, "-m", "venv", CODEGEN_VENV], cwd=ROOT)
        _install([python, "-m", "pip", "install", "-q", ARIADNE_CODEGEN])
    marker.write_text(ARIADNE_CODEGEN)
    return CODEGEN_VENV


def _install(args: list[str | Path], *, cwd: Path = ROOT) -> None:
    """Run an installer; a registry out of reach is a ToolUnavailableError."""
    try:
        _run(args, cwd=cwd)
    except CodegenError as exc:
        if _OFFLINE.search(exc.output):
            raise ToolUnavailableError(
                f"{Path(args[0]).name} cannot reach its package registry"
            ) from exc
        raise


def _run(
    args: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None
) -> None:
    """Run a tool; on failure, raise with its output (it says what went wrong)."""
    command = [str(arg) for arg in args]
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise CodegenError(f"{' '.join(command)} failed:", result.stdout)


def main() -> None:
    """Generate both clients from the schema file given, or schema.graphql."""
    schema = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "schema.graphql"
    if not schema.exists():
        raise SystemExit(f"no {schema}: run `make schema` first")
    try:
        print(f"Python client: {python_client(schema)}")
        print(f"TypeScript client: {typescript_client(schema)}")
    except CodegenError as exc:
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()

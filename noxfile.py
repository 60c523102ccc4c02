"""Sessions: tests, lint, typecheck, bench. Each runs in the project's uv environment."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests"]


def _uv(session: nox.Session, *args: str) -> None:
    session.run("uv", "run", "--frozen", *args, external=True)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (core and every plugin). Extra arguments go to pytest."""
    _uv(session, "pytest", *(session.posargs or ["-q"]))


@nox.session
def lint(session: nox.Session) -> None:
    _uv(session, "ruff", "check", "src", "plugins", "tests", "benchmarks", "noxfile.py")
    _uv(session, "ruff", "format", "--check", "src", "plugins", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    _uv(session, "mypy", "src/tryon_core")
    for plugin in sorted(__import__("pathlib").Path("plugins").glob("*/src")):
        _uv(session, "mypy", str(plugin))


@nox.session
def bench(session: nox.Session) -> None:
    """Performance figures (printed, never asserted)."""
    for script in sorted(__import__("pathlib").Path("benchmarks").glob("bench_*.py")):
        _uv(session, "python", str(script))

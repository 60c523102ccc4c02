"""Sessions: tests, slow, lint, typecheck, bench, screenshots. Each runs in the project's uv
environment.

`uv run nox` runs the default sessions, tests and slow: the whole test suite.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests", "slow"]


def _uv(session: nox.Session, *args: str) -> None:
    session.run("uv", "run", "--frozen", *args, external=True)


@nox.session
def tests(session: nox.Session) -> None:
    """Every test but the slow ones (core and every plugin). Extra arguments go to pytest."""
    _uv(session, "pytest", *(session.posargs or ["-q"]))


@nox.session
def slow(session: nox.Session) -> None:
    """The tests marked slow: schemathesis on the OpenAPI document, big concurrency runs."""
    _uv(session, "pytest", "-q", "-m", "slow", *session.posargs)


@nox.session
def screenshots(session: nox.Session) -> None:
    """The browser tests, retaking the documentation's screenshots (docs/img/console-*.png)."""
    session.run(
        *("uv", "run", "--frozen", "pytest", "-q", "-m", "browser", "tests/browser"),
        *session.posargs,
        external=True,
        env={"TRYON_DOCS_SCREENSHOTS": "1"},
    )


_LINTED = ("src", "plugins", "tests", "benchmarks", "docs/examples", "noxfile.py")


@nox.session
def lint(session: nox.Session) -> None:
    _uv(session, "ruff", "check", *_LINTED)
    _uv(session, "ruff", "format", "--check", *_LINTED)


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

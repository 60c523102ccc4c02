"""Sessions: tests, slow, lint, typecheck, bench, peer, compare, soak, screenshots. Each runs
in the project's uv environment.

`uv run nox` runs the default sessions, tests and slow: the whole test suite. `bench` runs the
quick benchmarks; `peer` (this gateway beside LiteLLM's proxy: installs LiteLLM into
var/bench/ on first use, then about ten minutes), `compare` (this checkout against another
revision, side by side) and `soak` (memory over a long run, several minutes) are sessions of
their own. None is a test: they print figures and assert nothing.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests", "slow"]


def _uv(session: nox.Session, *args: str) -> None:
    session.run("uv", "run", "--frozen", *args, external=True)


WORKERS = ("-n", "2")
"""pytest-xdist's processes for the tests and slow sessions: two, which halve CI's time (tests
~18 min instead of ~35, slow ~5.5 instead of ~8.5): most tests wait on the servers, processes
and deadlines they start. Every test has its own database, Redis prefix, ports and files.
``-- -n 0`` runs them in this one process."""


@nox.session
def tests(session: nox.Session) -> None:
    """Every test but the slow ones (core and every plugin), in ``WORKERS`` processes. Arguments
    replace the defaults (``-- -q -n 0``: one process). By default it names
    its 25 slowest tests at the end: CI's run is to stay well under 45 minutes."""
    _uv(session, "pytest", *(session.posargs or ["-q", *WORKERS, "--durations=25"]))


@nox.session
def slow(session: nox.Session) -> None:
    """The tests marked slow (schemathesis on the OpenAPI document, big concurrency runs, the
    cluster), in ``WORKERS`` processes."""
    _uv(session, "pytest", "-q", "-m", "slow", *WORKERS, "--durations=13", *session.posargs)


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


_OWN_SESSIONS = {"bench_peer.py": "peer", "bench_soak.py": "soak"}


@nox.session
def bench(session: nox.Session) -> None:
    """Performance figures (printed, never asserted); not the peer and soak benchmarks."""
    for script in sorted(__import__("pathlib").Path("benchmarks").glob("bench_*.py")):
        if script.name not in _OWN_SESSIONS:
            _uv(session, "python", str(script))


@nox.session
def peer(session: nox.Session) -> None:
    """This gateway and LiteLLM's proxy side by side (benchmarks/bench_peer.py; its options
    after --, e.g. `nox -s peer -- --database postgres --rounds 3`)."""
    _uv(session, "python", "benchmarks/bench_peer.py", *session.posargs)


@nox.session
def compare(session: nox.Session) -> None:
    """This checkout against another revision, side by side in paired alternation
    (benchmarks/compare_revisions.py; `nox -s compare -- --base HEAD~1`)."""
    _uv(session, "python", "benchmarks/compare_revisions.py", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """RSS every 50 requests over a long run, per route (benchmarks/bench_soak.py)."""
    _uv(session, "python", "benchmarks/bench_soak.py", *session.posargs)

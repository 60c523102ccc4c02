"""The session-end scan of every real server's log fails the run when one logged a secret, in
one process and under pytest-xdist (``-n 2``), where each worker scans its
own servers' logs and only the controller can fail the run (``tests/log_scan.py``)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = """
from tests.log_scan import pytest_sessionfinish, pytest_testnodedown, server_log_directory
"""

TESTS = """
import pytest
from tests.server_logs import remember, session_log

@pytest.mark.parametrize("n", range(4))
def test_a_server_writes_its_log(n, tmp_path):
    secret = remember(f"made_in_test_{{n}}_" + "q" * 24) if {leak} and n == 3 else "nothing"
    session_log(tmp_path / "gateway.log").write_text(f"GET /health 200 {{secret}}\\n")
"""


def _run(pytester: pytest.Pytester, *, leak: bool, workers: str | None) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_servers=textwrap.dedent(TESTS.format(leak=leak)))
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    options = ["-p", "xdist", "-n", workers] if workers else ["-p", "no:xdist"]
    return pytester.runpytest_subprocess("-q", *options)


@pytest.fixture(autouse=True)
def _tests_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner run imports ``tests.log_scan`` and ``tests.server_logs`` from this checkout."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


@pytest.mark.parametrize("workers", [None, "2"], ids=["one-process", "xdist"])
def test_a_logged_secret_fails_the_run(pytester: pytest.Pytester, workers: str | None) -> None:
    result = _run(pytester, leak=True, workers=workers)
    result.stdout.fnmatch_lines(
        [
            "*A server the tests ran logged a secret:*",
            "*gateway.log: a key a test made: GET /health 200 made_in_test_3_q*",
        ]
    )
    result.stdout.fnmatch_lines(["*4 passed*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_clean_logs_pass_under_xdist(pytester: pytest.Pytester) -> None:
    result = _run(pytester, leak=False, workers="2")
    result.stdout.fnmatch_lines(["*4 passed*"])
    assert "logged a secret" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.OK

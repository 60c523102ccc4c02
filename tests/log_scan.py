"""The session-end scan of every real server's log for secrets, as pytest hooks.

``tests/conftest.py`` imports these three names, which is how pytest finds them: the session's
log directory (``tests/server_logs.py``), the scan at the session's end that fails the run when
a log holds a secret, and, under pytest-xdist (``-n``), the hand-over of each worker's findings
to the controller. Kept apart from the conftest so that a test can run an inner session with
just them (``tests/test_log_scan_session.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import server_logs

__all__ = ["pytest_sessionfinish", "pytest_testnodedown", "server_log_directory"]


@pytest.fixture(scope="session", autouse=True)
def server_log_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the real servers the tests start write their logs (``tests/server_logs.py``)."""
    return server_logs.start_session(tmp_path_factory.mktemp("server-logs"))


_WORKER_LEAKS = "server_log_leaks"
_leaks_of_workers: dict[str, list[tuple[str, str]]] = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a real server of it logged a secret (``tests/server_logs.py``).

    Under pytest-xdist (``-n``) each worker scans the logs of its own servers and hands what it
    found to the controller (``workeroutput``), which reports it and fails the run: a worker's
    own exit status does not reach the controller."""
    found = {str(path): leaks for path, leaks in server_logs.scan_directory().items()}
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:
        worker_output[_WORKER_LEAKS] = found
        return
    found |= _leaks_of_workers
    if not found:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["", "A server the tests ran logged a secret:"]
    for path, leaks in sorted(found.items()):
        lines += [f"  {path}: {what}: {excerpt}" for what, excerpt in leaks[:20]]
    for line in lines:
        if reporter is not None:
            reporter.write_line(line, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """An xdist worker finished: keep the leaks its session-end scan found."""
    output = getattr(node, "workeroutput", None) or {}
    _leaks_of_workers.update(output.get(_WORKER_LEAKS, {}))

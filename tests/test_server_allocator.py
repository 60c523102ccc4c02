"""tryon_core.server.allocator: glibc's mmap threshold is fixed, unless the operator set one."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from tryon_core.server.allocator import return_big_buffers

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def test_an_operators_threshold_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert return_big_buffers() is False


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_glibc_takes_the_threshold() -> None:
    # in a child: the setting is process-wide, and lasts
    code = "from tryon_core.server.allocator import return_big_buffers as r; print(r())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    argv = [sys.executable, "-c", code]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "True"

"""The Python example in docs/offline-engine.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "docs" / "offline-engine.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(example, "offline-engine.md", "exec"), namespace)
    assert (tmp_path / "out.png").stat().st_size > 0
    assert len(namespace["images"]) == 3  # type: ignore[arg-type]

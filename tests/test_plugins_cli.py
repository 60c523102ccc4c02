"""``tryon plugins list`` and ``tryon plugins new``, as a plugin author runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tryon_core.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "tryon.toml"
    path.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\n'
        f'[storage]\npath = "{tmp_path}/files"\n'
        "[providers.local]\nenabled = true\n"
        '[providers.openai]\nenabled = true\napi_key = "sk-test"\n'
        '[models."openai/gpt-image-1-mini"]\nenabled = false\n'
        '[models."openai/gpt-image-1"]\ncredits = 31\n'
        '[plugins]\nblocked = ["kling"]\n'
    )
    return str(path)


def test_list_shows_each_plugin_its_version_models_and_what_is_enabled(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "plugins", "list", "--json", "--config", config)
    assert code == 0
    plugins = {plugin["name"]: plugin for plugin in json.loads(out)}
    assert plugins["kling"]["blocked"] is True and plugins["kling"]["providers"] == []
    assert plugins["kling"]["package"] == "tryon-kling"
    local = plugins["local"]
    assert (local["package"], local["version"], local["blocked"]) == ("tryon-local", "0.1.0", False)
    [provider] = local["providers"]
    assert provider["name"] == "local" and provider["enabled"] is True
    assert [m["slug"] for m in provider["models"]] == ["local/overlay"]
    [openai] = plugins["openai"]["providers"]
    models = {m["slug"]: m for m in openai["models"]}
    assert models["openai/gpt-image-1"]["credits"] == 31
    assert models["openai/gpt-image-1"]["enabled"] is True
    assert models["openai/gpt-image-1-mini"]["enabled"] is False
    assert "input_fidelity" in models["openai/gpt-image-1"]["options"]
    [gemini] = plugins["gemini"]["providers"]
    assert gemini["enabled"] is False
    assert all(not m["enabled"] for m in gemini["models"])

    code, out, _ = run(capsys, "plugins", "list", "--config", config)
    assert code == 0
    assert "kling  tryon-kling 0.1.0  BLOCKED by [plugins] blocked" in out
    assert "  provider local: enabled" in out
    assert "    on  local/overlay" in out
    assert "    off openai/gpt-image-1-mini" in out


def test_new_writes_a_package_whose_tests_pass_as_they_stand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "plugins", "new", "my_shop", "--dir", str(tmp_path))
    assert code == 0, out
    package = tmp_path / "tryon-my-shop"
    assert sorted(p.name for p in package.iterdir()) == [
        "README.md",
        "pyproject.toml",
        "test_tryon_my_shop.py",
        "tryon_my_shop.py",
        "tryon_my_shop_fake.py",
    ]
    source = (package / "tryon_my_shop.py").read_text()
    assert 'SLUG = "my_shop/tryon-v1"' in source and "class MyShopAdapter" in source
    assert "acme" not in "".join(p.read_text().lower() for p in package.iterdir())
    pyproject = (package / "pyproject.toml").read_text()
    assert 'name = "tryon-my-shop"' in pyproject and 'my_shop = "tryon_my_shop"' in pyproject
    # its own tests, in a process of their own, from its own folder
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=package,
        env={**os.environ, "PYTHONPATH": str(package)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed, 1 skipped" in result.stdout


@pytest.mark.parametrize("name", ["Shop", "1shop", "my-shop", "acme", "a" * 40, ""])
def test_new_refuses_a_name_that_is_not_a_provider_name(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "plugins", "new", name, "--dir", str(tmp_path))
    assert code == 1 and "is not a provider name" in err
    assert list(tmp_path.iterdir()) == []


def test_new_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tryon-shop").mkdir()
    (tmp_path / "tryon-shop" / "mine.py").write_text("keep me")
    code, _, err = run(capsys, "plugins", "new", "shop", "--dir", str(tmp_path))
    assert code == 1 and "exists already" in err
    assert [p.name for p in (tmp_path / "tryon-shop").iterdir()] == ["mine.py"]


@pytest.mark.slow
def test_new_installs_into_a_fresh_environment_and_passes_its_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the README says: a fresh venv, `uv pip install -e '.[test]'`, `pytest`."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("needs uv on PATH")
    assert run(capsys, "plugins", "new", "shop", "--dir", str(tmp_path))[0] == 0
    package = tmp_path / "tryon-shop"
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }

    def sh(*argv: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            argv, cwd=package, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
        return done

    sh(uv, "venv", "-q", "--python", sys.executable, ".venv")
    # tryon-core from this checkout (it is not on PyPI here), the package with its test extra
    sh(uv, "pip", "install", "-q", "--python", ".venv/bin/python", "-e", f"{ROOT}[testing]")
    sh(uv, "pip", "install", "-q", "--python", ".venv/bin/python", "-e", ".[test]")
    listed = sh(".venv/bin/tryon", "plugins", "list", "--json", "--config", "/dev/null")
    assert "shop" in {plugin["name"] for plugin in json.loads(listed.stdout)}
    tested = sh(".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert "6 passed, 1 skipped" in tested.stdout

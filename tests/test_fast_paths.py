"""``[server] loop`` and ``http``: what ``auto`` picks, and a named one that is not installed
is a configuration error with the install hint. ``--workers`` out of range is one too."""

from __future__ import annotations

import pytest

from tryon_core.cli import main
from tryon_core.config import ServerConfig
from tryon_core.errors import ConfigError
from tryon_core.server import fast_paths
from tryon_core.server.connections import GuardedH11Protocol
from tryon_core.server.httptools_guard import GuardedHttpToolsProtocol


def test_auto_takes_the_fast_paths_when_installed() -> None:
    server = ServerConfig()
    assert fast_paths.loop_name(server) == "uvloop"
    protocol = fast_paths.http_protocol(server)
    assert protocol.func is GuardedHttpToolsProtocol
    assert fast_paths.parser_name(protocol) == "httptools"
    assert protocol.keywords["header_timeout"] == server.header_timeout_seconds


def test_auto_falls_back_without_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_paths, "_installed", lambda module: False)
    server = ServerConfig()
    assert fast_paths.loop_name(server) == "asyncio"
    assert fast_paths.http_protocol(server).func is GuardedH11Protocol


def test_chosen_ones_are_kept() -> None:
    server = ServerConfig(loop="asyncio", http="h11")
    assert fast_paths.loop_name(server) == "asyncio"
    assert fast_paths.parser_name(fast_paths.http_protocol(server)) == "h11"


def test_naming_one_not_installed_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_paths, "_installed", lambda module: False)
    with pytest.raises(ConfigError, match=r"server.loop = 'uvloop'.*tryon-core\[speed\]"):
        fast_paths.loop_name(ServerConfig(loop="uvloop"))
    with pytest.raises(ConfigError, match=r"server.http = 'httptools'.*tryon-core\[speed\]"):
        fast_paths.http_protocol(ServerConfig(http="httptools"))


@pytest.mark.parametrize("count", ["0", "257"])
def test_workers_out_of_range(count: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", "config/tryon.toml", "--workers", count]) == 2
    assert "--workers takes a whole number from 1 to 256" in capsys.readouterr().err

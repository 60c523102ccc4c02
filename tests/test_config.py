"""The configuration file: defaults, ${VAR}, and start-stopping errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ROOT
from tryon_core.billing import MAX_CREDITS
from tryon_core.config import load_settings, parse_settings, resolve_providers
from tryon_core.errors import ConfigError
from tryon_core.plugins import collect_providers, make_plugin_manager
from tryon_core.provider import ProviderConfig
from tryon_core.testing import ScriptedProvider


class KeyedConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    secrets = ("api_key",)
    api_key: str | None = None
    region: str = "eu"


def registry_with_secret():  # type: ignore[no-untyped-def]
    from tryon_core.provider import ProviderSpec

    scripted = ScriptedProvider(name="keyed")
    spec_models = scripted.models

    class Plugin:
        from tryon_core import hookimpl

        @hookimpl
        def tryon_register_providers(self, registrar):  # type: ignore[no-untyped-def]
            registrar.add_provider(
                ProviderSpec(
                    name="keyed",
                    config_type=KeyedConfig,
                    models=spec_models,
                    adapter_factory=lambda _: scripted,
                )
            )

    return collect_providers(make_plugin_manager(extra_plugins=[Plugin()], load_entry_points=False))


def test_shipped_configs_parse() -> None:
    default = load_settings(ROOT / "config" / "tryon.toml")
    assert default.server.port == 8000
    assert default.providers["local"]["enabled"] is True
    example = load_settings(ROOT / "config" / "tryon.example.toml")
    assert example.fetch.max_redirects == 3


def test_defaults_when_empty() -> None:
    settings = parse_settings("")
    assert settings.server.base_url == "http://127.0.0.1:8000"
    assert settings.database.url.startswith("sqlite+aiosqlite:///")


def test_environment_variables_are_substituted() -> None:
    settings = parse_settings(
        '[server]\npublic_url = "https://${HOST}/x"\n', environ={"HOST": "tryon.example"}
    )
    assert settings.server.base_url == "https://tryon.example/x"


_S3 = '[storage.s3]\nbucket = "tryon"\naccess_key_id = "k"\nsecret_access_key = "s"\n'


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[server]\nprot = 1\n", "prot"),
        ('[server]\nport = "eighty"\n', "server.port"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[fetch]\ntimeout = 0\n", "fetch.timeout"),
        ('[fetch]\nallow_hosts = ["intranet"]\n', "allow_hosts entry 'intranet'"),
        ("[images]\nmax_pixels = 100000000\n", "images.max_pixels"),
        ("[surprise]\nx = 1\n", "surprise"),
        ('[server]\npublic_url = "${NOPE}"\n', "NOPE"),
        ("[server\n", "TOML"),
        ('[storage]\nbackend = "ftp"\n', "storage.backend"),
        ('[storage]\nbackend = "s3"\n', 'storage: backend = "s3" needs a'),
        ('[storage.s3]\nbucket = "tryon"\n', "storage.s3: Object missing required field"),
        (_S3.replace('"k"', '""'), "storage.s3.access_key_id"),
        (_S3 + 'endpoint_url = "s3.internal"\n', "storage.s3: endpoint_url must be"),
        (_S3 + 'prefix = "../up"\n', "storage.s3: prefix may not"),
        (_S3 + "presign = 1\n", "storage.s3.presign"),
        (
            '[storage]\nbackend = "s3"\nurl_ttl_seconds = 604801\n' + _S3 + "presign = true\n",
            "storage: url_ttl_seconds: a presigned URL lasts at most",
        ),
        ("[limits]\nrequests_per_minute = 0\n", "limits.requests_per_minute"),
        ("[limits]\nconcurrent_generations = true\n", "limits.concurrent_generations"),
        ("[limits]\nconcurrent_generations = 1000001\n", "limits.concurrent_generations"),
        ("[limits.account]\nrequests_per_minute = -5\n", "limits.account.requests_per_minute"),
        ('[limits.account]\nconcurrent_generations = "2"\n', "limits.account.concurrent"),
        ("[limits.account]\nburst = 2\n", "limits.account: Object contains unknown field"),
    ],
)
def test_bad_values_stop_the_start_naming_the_key(text: str, names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        parse_settings(text, environ={})


def test_missing_secret_of_an_enabled_provider_is_named() -> None:
    registry = registry_with_secret()
    with pytest.raises(ConfigError, match=r"providers\.keyed\.api_key is required"):
        resolve_providers(parse_settings("[providers.keyed]\nenabled = true\n"), registry)
    configs = resolve_providers(
        parse_settings('[providers.keyed]\nenabled = true\napi_key = "k"\n'), registry
    )
    assert configs["keyed"].enabled


def test_disabled_provider_needs_no_secret() -> None:
    configs = resolve_providers(parse_settings(""), registry_with_secret())
    assert configs["keyed"].enabled is False


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[providers.keyed]\nregoin = "us"\n', r"providers\.keyed: .*regoin"),
        ("[providers.nobody]\nenabled = true\n", r"providers\.nobody: no installed plugin"),
        ('[models."x/y"]\ncredits = 1\n', r'models\."x/y"'),
        ('[routing]\nauto = ["x/y"]\n', r"routing\.auto: unknown model"),
        ('[routing.fallbacks]\n"scripted/alpha" = ["x/y"]\n', r"routing\.fallbacks"),
    ],
)
def test_provider_sections_and_slugs_are_checked(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        resolve_providers(parse_settings(text), registry_with_secret())


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.toml")


def test_inconsistent_image_limits_are_refused() -> None:
    with pytest.raises(ConfigError, match="min_side is larger than max_side"):
        parse_settings("[images]\nmin_side = 9000\n")


def test_a_provider_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"providers\.keyed: timeout"):
        resolve_providers(
            parse_settings("[providers.keyed]\ntimeout = 0\n"), registry_with_secret()
        )


@pytest.mark.parametrize(
    ("price", "problem"),
    [
        ("1000000000001", "<= 1000000000000"),
        ("9223372036854775807", "<= 1000000000000"),
        ("9223372036854775808", "<= 1000000000000"),
        ("-1", ">= 0"),
        ("1.5", "got `float`"),
        ("true", "got `bool`"),
    ],
)
def test_a_model_price_past_the_maximum_stops_the_start_naming_the_model(
    price: str, problem: str
) -> None:
    text = f'[models."scripted/alpha"]\ncredits = {price}\n'
    with pytest.raises(ConfigError) as refused:
        parse_settings(text)
    assert str(refused.value).startswith('<config>: models."scripted/alpha".credits: ')
    assert problem in str(refused.value)


def test_a_model_price_at_the_maximum_is_accepted() -> None:
    settings = parse_settings(f'[models."scripted/alpha"]\ncredits = {MAX_CREDITS}\n')
    assert settings.models["scripted/alpha"].credits == MAX_CREDITS


def test_limits_apply_per_key_and_per_account_and_default_to_none() -> None:
    assert parse_settings("").limits.concurrent_generations is None
    limits = parse_settings(
        "[limits]\nrequests_per_minute = 60\nconcurrent_generations = 2\n"
        "[limits.account]\nconcurrent_generations = 5\n",
        environ={},
    ).limits
    assert (limits.requests_per_minute, limits.concurrent_generations) == (60, 2)
    assert (limits.account.requests_per_minute, limits.account.concurrent_generations) == (None, 5)

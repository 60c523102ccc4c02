"""For every test in the repository, core and plugins alike: no network beyond loopback."""

from tryon_core.testing.network import no_network  # noqa: F401  (an autouse fixture)

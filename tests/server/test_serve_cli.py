"""`embedops serve` refuses to listen beyond loopback while there is no auth."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from embedops.cli.serve_cmd import check_loopback, serve
from embedops.errors import ConfigError


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    check_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org"])
def test_other_hosts_are_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="no authentication"):
        check_loopback(host)


def test_serve_command_exits_with_a_clear_message_for_0_0_0_0() -> None:
    app = typer.Typer()
    app.command()(serve)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--model",
                                      "testing/hash-64"])
    assert result.exit_code == 2
    assert "refusing to bind to 0.0.0.0" in result.output

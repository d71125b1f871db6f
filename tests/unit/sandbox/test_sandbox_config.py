"""SandboxConfig: parsing, patching (tokens included) and the CLI command's options."""

from __future__ import annotations

import re
import socket

import pytest
import typer
from pydantic import ValidationError
from typer.testing import CliRunner

from leadsync.config import RateLimit
from leadsync.sandbox.command import register
from leadsync.sandbox.settings import DEFAULT_TOKEN, SandboxConfig


def test_defaults_mirror_a_professional_portal_without_faults() -> None:
    config = SandboxConfig()
    assert config.tokens == {DEFAULT_TOKEN}
    assert config.rate_limit == RateLimit(count=190, window_seconds=10.0)
    assert config.search_rate_limit == RateLimit(count=5, window_seconds=1.0)
    assert (config.fault_5xx, config.fault_timeout, config.fault_drop) == (0, 0, 0)


@pytest.mark.parametrize("text", ["none", "off", "", "NONE"])
def test_rate_limit_can_be_switched_off(text: str) -> None:
    assert SandboxConfig(rate_limit=text).rate_limit is None


def test_rate_limit_parses_text() -> None:
    assert SandboxConfig(rate_limit="100/10s").rate_limit == RateLimit(100, 10.0)


def test_patch_adds_and_revokes_tokens_and_changes_knobs() -> None:
    config = SandboxConfig().patched(
        {"add_tokens": ["new"], "revoke_tokens": [DEFAULT_TOKEN], "fault_5xx": 0.5}
    )
    assert config.tokens == {"new"}
    assert config.fault_5xx == 0.5
    again = config.patched({"tokens": ["a", "b"], "rate_limit": "none"})
    assert again.tokens == {"a", "b"}
    assert again.rate_limit is None
    assert again.fault_5xx == 0.5


def test_patch_round_trips_through_json_dump() -> None:
    config = SandboxConfig(extra_properties=frozenset({"lead_source"}), reject_emails="x")
    assert SandboxConfig.model_validate(config.model_dump(mode="json")) == config


@pytest.mark.parametrize(
    "changes",
    [{"fault_drop": 1.5}, {"reject_emails": "("}, {"invalid_batch": "half"}, {"nope": 1}],
)
def test_invalid_changes_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SandboxConfig().patched(changes)


def test_command_documents_every_option() -> None:
    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:
        """Keep the app multi-command, as the real CLI is."""

    result = CliRunner().invoke(app, ["sandbox", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    for option in [
        "--host", "--port", "--token", "--rate-limit", "--daily-limit", "--retry-after",
        "--no-retry-after", "--fault-5xx", "--fault-timeout", "--fault-drop", "--latency-ms",
        "--search-lag-ms", "--invalid-batch", "--reject-emails", "--seed",
    ]:  # fmt: skip
        assert option in text
    assert DEFAULT_TOKEN in text


def test_command_refuses_a_bad_option_value() -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["--rate-limit", "lots", "--port", "0"])
    assert result.exit_code == 2
    assert "invalid sandbox option" in result.output


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--fault-5xx", "2"],
         "invalid sandbox option: --fault-5xx: Input should be less than or equal to 1"),
        (["--hang-seconds", "nan"],
         "invalid sandbox option: --hang-seconds: Input should be greater than 0"),
        (["--daily-limit", "-5"],
         "invalid sandbox option: --daily-limit: Input should be greater than or equal to 1"),
    ],
)  # fmt: skip
def test_a_value_out_of_range_is_one_line_naming_the_option(args: list[str], line: str) -> None:
    app = typer.Typer()
    register(app)

    result = CliRunner().invoke(app, [*args, "--port", "0"])

    assert result.exit_code == 2
    assert result.output.splitlines() == [line]


@pytest.mark.parametrize("port", ["-1", "65536"])
def test_a_port_out_of_range_is_refused(port: str) -> None:
    app = typer.Typer()
    register(app)

    result = CliRunner().invoke(app, ["--port", port])

    assert result.exit_code == 2
    assert "--port" in result.output
    assert "Traceback" not in result.output


def test_a_busy_port_is_one_line() -> None:
    app = typer.Typer()
    register(app)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]

        result = CliRunner().invoke(app, ["--port", str(port)])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"leadsync sandbox: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]

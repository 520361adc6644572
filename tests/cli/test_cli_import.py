"""``embedops --help`` (and a mistyped command) answers without loading the libraries a
command needs only when it runs: importing the CLI loaded the settings (pydantic), the
preprocessing pipeline (numpy, ftfy) and the ledger, 0.6-0.8 s of every invocation
on the 2-core machine; a command imports them when it runs."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("numpy", "pydantic", "pydantic_settings", "ftfy", "torch", "faiss",
         "embedops.config", "embedops.ledger", "embedops.store", "embedops.ingest",
         "embedops.preprocess", "embedops.client")


def test_importing_the_cli_loads_no_library_a_command_needs_only_when_it_runs() -> None:
    code = ("import json, sys, embedops.cli.app; "
            f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == []


def test_help_lists_the_commands_without_loading_them() -> None:
    code = ("import json, sys\n"
            "from typer.testing import CliRunner\n"
            "from embedops.cli.app import app\n"
            "result = CliRunner().invoke(app, ['--help'])\n"
            "assert result.exit_code == 0, result.output\n"
            f"print(json.dumps([sorted(m for m in sys.modules if m.startswith({HEAVY!r})),"
            " result.output]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    loaded, output = json.loads(done.stdout)
    assert loaded == []
    assert "ingest" in output and "search" in output and "migrate" in output

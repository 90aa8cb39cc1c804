"""The CLI starts fast, answers --help and --version, and never imports torch."""

from __future__ import annotations

import subprocess
import sys

import lorareg


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lorareg", *args], capture_output=True, text=True, timeout=60
    )


def test_version_prints_package_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"lorareg {lorareg.__version__}"


def test_help_lists_commands_and_does_not_import_torch() -> None:
    code = (
        "import sys; from lorareg.cli import app; import lorareg;"
        "print('torch' in sys.modules, 'diffusers' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False False", result.stderr
    help_result = run_cli("--help")
    assert help_result.returncode == 0
    assert "Usage" in help_result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("no-such-command")
    assert result.returncode == 2

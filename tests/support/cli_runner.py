"""Run ``lorareg`` in-process through ``main``, as the console script does (real errors, exit codes)."""

from __future__ import annotations

import sys

import pytest

from lorareg.cli import main


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run ``lorareg ARGS``; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["lorareg", *args])
    code: object = 0
    try:
        main()
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return int(code or 0), captured.out, captured.err  # type: ignore[call-overload]

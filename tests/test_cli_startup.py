"""The CLI's fast paths stay fast: ``verify`` and ``pull`` import no pydantic, rich or httpx's own CLI.

Each check runs the command in a fresh interpreter and lists, at exit, which of the heavy modules got
imported. ``lorareg/cli/_coerce.py`` keeps pydantic out, ``registry_cmd._progress`` keeps rich out when
stderr is not a terminal, and ``lorareg/cli/__init__.py`` keeps ``httpx._main`` out. The coercion tests
check that values still come out as typer's own coercion makes them, and that what the fast path does not
handle (bounded numbers) is still validated by typer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import lorareg.cli  # noqa: F401 - installs the plain coercion hook
from tests.fixtures.keys import KeyFiles

HEAVY = ("pydantic", "rich", "httpx._main", "torch")
# what the server, the loader and the catalogue need, and a local ``verify`` never does (issue 18, item 3)
NOT_FOR_VERIFY = ("httpx", "sqlalchemy", "fastapi", "starlette", "uvicorn", "numpy", "PIL", "jinja2")
MANIFEST = """\
name = "acme/startup"
version = "1.0.0"
[license]
id = "MIT"
commercial_use = true
derivatives = true
attribution_required = false
[consent]
subject = "style"
status = "not-required"
"""


def heavy_imports_of(
    *args: str, env: dict[str, str], before_main: str = "", modules: tuple[str, ...] = HEAVY
) -> tuple[int, str]:
    """Run ``lorareg ARGS`` in a fresh interpreter; return its exit code and which ``modules`` it imported."""
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: print('HEAVY', sorted(m for m in {modules!r} if sys.modules.get(m))))\n"
        f"sys.argv = ['lorareg', *{list(args)!r}]\n"
        "from lorareg.cli import main\n"
        f"{before_main}\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    heavy = [line for line in result.stdout.splitlines() if line.startswith("HEAVY")]
    assert heavy, result.stderr
    return result.returncode, heavy[-1].removeprefix("HEAVY ")


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    import os

    return {**os.environ, "LORAREG_TRUST": str(tmp_path / "no-trust.toml"), "HOME": str(tmp_path)}


def test_verify_of_a_signed_adapter_imports_no_heavy_module(
    tmp_path: Path, adapter_path: Path, publisher_key: KeyFiles, cli_env: dict[str, str]
) -> None:
    (tmp_path / "m.toml").write_text(MANIFEST)
    sign = [
        sys.executable,
        "-m",
        "lorareg",
        "sign",
        str(adapter_path),
        "--manifest",
        str(tmp_path / "m.toml"),
    ]
    subprocess.run([*sign, "--key", str(publisher_key.private_path)], check=True, env=cli_env, timeout=60)
    args = ("verify", str(adapter_path), "--key", str(publisher_key.public_path))
    code, heavy = heavy_imports_of(*args, env=cli_env)
    assert (code, heavy) == (0, "[]")
    code, heavy = heavy_imports_of(*args, env=cli_env, modules=NOT_FOR_VERIFY)
    assert (code, heavy) == (0, "[]")


def test_pull_without_a_terminal_imports_no_heavy_module(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """A refused connection still goes through the client and the progress bar, then exits 4."""
    out = str(tmp_path / "out")
    args = ("pull", "acme/x@1.0.0", "--no-verify", "--out", out, "--registry", "http://127.0.0.1:9")
    one_try = "import lorareg.client.transport; lorareg.client.transport.MAX_ATTEMPTS = 1"
    code, heavy = heavy_imports_of(*args, env=cli_env, before_main=one_try)
    assert (code, heavy) == (4, "[]")


def _echo_app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def echo(
        name: str,
        paths: list[Path] = typer.Option([], "--path"),
        existing: Path | None = typer.Option(None, "--existing", exists=True, dir_okay=False),
        count: int = typer.Option(1, "--count", min=1, max=3),
        loud: bool = typer.Option(False, "--loud"),
    ) -> None:
        kinds = [type(p).__name__ for p in paths]
        typer.echo(repr((name, [str(p) for p in paths], kinds, existing, count, loud)))

    return app


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["bob"], "('bob', [], [], None, 1, False)"),
        (["", "--path", "a", "--path", ""], "('', ['a', '.'], ['PosixPath', 'PosixPath'], None, 1, False)"),
        (["bob", "--count", "3", "--loud"], "('bob', [], [], None, 3, True)"),
    ],
    ids=["defaults", "empty-strings-and-path-list", "bounded-int-and-flag"],
)
def test_plain_values_come_out_as_typer_makes_them(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(_echo_app(), args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bob", "--existing", "/no/such/file"], "does not exist"),
        (["bob", "--existing", "/"], "is a directory"),
        (["bob", "--count", "4"], "less than or equal to 3"),
        (["bob", "--count", "x"], "valid integer"),
    ],
    ids=["missing-path", "directory-for-file", "int-over-bound", "int-not-a-number"],
)
def test_values_typer_refuses_are_still_refused(args: list[str], message: str) -> None:
    result = CliRunner().invoke(_echo_app(), args)
    assert result.exit_code == 2
    assert message in result.output


SINGLE_COMMAND_RUNS = [
    ["verify", "--help"],
    ["pull", "--help"],
    ["--debug", "verify", "--help"],
    ["verify"],
    ["pull", "acme/x", "--bogus"],
    ["inspect", "--help"],
]


@pytest.mark.parametrize("args", SINGLE_COMMAND_RUNS, ids=[" ".join(a) for a in SINGLE_COMMAND_RUNS])
def test_the_one_command_app_answers_exactly_as_the_full_app(args: list[str]) -> None:
    """``main`` builds only the command it runs; its help and usage errors are the full app's, to the byte."""
    from lorareg.cli import _app_for, app

    single = _app_for(args)
    assert single is not app
    assert [info.name for info in single.registered_commands] == [next(a for a in args if a != "--debug")]
    full, fast = CliRunner().invoke(app, args), CliRunner().invoke(single, args)
    assert (fast.exit_code, fast.output) == (full.exit_code, full.output)


@pytest.mark.parametrize(
    "args", [[], ["--help"], ["--version"], ["trust", "list"], ["no-such-command"], ["--debug"]]
)
def test_groups_root_options_and_unknown_names_get_the_full_app(args: list[str]) -> None:
    from lorareg.cli import _app_for, app

    assert _app_for(args) is app

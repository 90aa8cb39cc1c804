"""CLI: ``lorareg compare A B`` (weight-level similarity of two files) and ``lorareg similar FILE|REF``.

Commands parse, call ``lorareg.adapter.fingerprint`` (numpy, imported inside the command so ``lorareg
--help`` stays fast) or the registry client, and print. The score's meaning is in ``docs/fingerprints.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lorareg.cli._output import print_json, safe_text

if TYPE_CHECKING:
    from lorareg.adapter.fingerprint import Comparison


_REGISTRY = typer.Option(
    "http://127.0.0.1:8000", "--registry", envvar="LORAREG_REGISTRY", help="Registry URL."
)


def register(app: typer.Typer) -> None:
    """Add ``compare`` and ``similar`` to the root app."""
    app.command("compare")(compare)
    app.command("similar")(similar)


def compare(
    a: Path = typer.Argument(..., help="First adapter (.safetensors)."),
    b: Path = typer.Argument(..., help="Second adapter (.safetensors)."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Compare what two adapters do to the base model's weights (ΔW), whatever their format, dtype or rank.

    similarity: energy-weighted cosine over the modules both adapt (1 = same ΔW up to strength); coverage:
    the share of each adapter's ΔW in those modules (the smaller side); scale: ‖ΔW_B‖ / ‖ΔW_A‖ there.
    """
    from lorareg.adapter.fingerprint import compare_files

    result = compare_files(a, b)
    if as_json:
        print_json(result.to_json())
    else:
        _print_comparison(a, b, result)


def similar(
    target: str = typer.Argument(..., help="An adapter file (fingerprinted here) or ns/name[@version]."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
    registry: str = _REGISTRY,
) -> None:
    """List the registry's adapters whose weights are most similar (top 10, any status).

    A FILE is fingerprinted locally and only its fingerprint is sent; a REF is looked up by the registry.
    """
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    path = Path(target)
    with Client(registry, token_for(registry)) as client:
        if path.is_file() or target.endswith(".safetensors"):
            from lorareg.adapter.fingerprint import fingerprint_file

            answer = client.similar_to(fingerprint_file(path).to_bytes())
        else:
            ref = target if "@" in target else f"{target}@{client.resolve(target)['version']}"
            answer = client.similar(ref)
    if as_json:
        print_json(answer)
        return
    items = answer.get("similar") or []
    if not items:
        typer.echo("no similar adapters in the registry")
    for item in items:
        line = (
            f"{item.get('similarity', 0):.3f}  coverage {item.get('coverage', 0):.2f}  "
            f"{item.get('status', '?'):<8} {item.get('ref', '?')}"
        )
        typer.echo(safe_text(line))


def _print_comparison(a: Path, b: Path, c: Comparison) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows: list[tuple[str, Any]] = [
        ("a", f"{a} ({c.family_a}, {c.modules_a} modules)"),
        ("b", f"{b} ({c.family_b}, {c.modules_b} modules)"),
        ("similarity", f"{c.similarity:.3f}"),
        ("coverage", f"{c.coverage:.3f} (a {c.coverage_a:.3f}, b {c.coverage_b:.3f})"),
        ("scale", "n/a" if c.scale is None else f"{c.scale:.3f} (‖ΔW_b‖ / ‖ΔW_a‖)"),
        ("shared modules", str(c.modules_shared)),
    ]
    rows += [("note", n) for n in c.notes]
    for label, value in rows:
        table.add_row(Text(label), Text(safe_text(value)))
    Console(highlight=False).print(table)

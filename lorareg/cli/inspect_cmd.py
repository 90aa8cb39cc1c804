"""CLI: ``lorareg inspect FILE`` (facts and hashes of an adapter) and ``lorareg dataset-hash DIR``.

Commands parse, call ``lorareg.adapter.inspect`` / ``lorareg.adapter.dataset`` and print. Every string that
comes from the
file (metadata, tensor names, claim messages quoting metadata) goes through ``safe_text`` and is printed as a
rich ``Text`` (never parsed as markup), so a hostile file cannot move the cursor, clear the screen or
reorder text with bidi overrides.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from lorareg.cli._output import hash_rows, print_json, safe_text, stdout_console

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from rich.table import Table

    from lorareg.adapter.dataset import DatasetDigest
    from lorareg.adapter.inspect import Inspection

SHOWN_TARGETS = 8  # targets listed in the human output; --json has them all
SHOWN_VALUE_CHARS = 200  # metadata values are cut in the human output; --json has them whole


def register(app: typer.Typer) -> None:
    """Add ``inspect`` and ``dataset-hash`` to the root app."""
    app.command("inspect")(inspect)
    app.command("dataset-hash")(dataset_hash)


def inspect(
    file: Path = typer.Argument(..., help="The adapter (.safetensors) to inspect."),
    as_json: bool = typer.Option(False, "--json", help="Print the facts as JSON."),
    no_hashes: bool = typer.Option(False, "--no-hashes", help="Skip the hashes (header only: instant)."),
    fingerprint: bool = typer.Option(
        False, "--fingerprint", help="Add the weight fingerprint's pooled summary (reads the tensors)."
    ),
) -> None:
    """Show what an adapter file is (family, format, type, rank, alpha, targets) and its hashes.

    Facts come from tensor names and shapes; the file's metadata is shown as untrusted text, and metadata
    that contradicts the tensors or the hashes is flagged.
    """
    from lorareg.adapter.inspect import inspect_file

    if fingerprint:  # beside the hashes, in a child of its own: a second core hides the sketch
        with _beside() as pool:
            pending = pool.submit(_fingerprint_summary, file)
            result = inspect_file(file, with_hashes=not no_hashes)
            summary: dict[str, object] | None = pending.result()
    else:
        result, summary = inspect_file(file, with_hashes=not no_hashes), None
    if as_json:
        print_json(result.to_json() | ({"fingerprint": summary} if summary is not None else {}))
    else:
        _print_inspection(result)
        if summary is not None:
            typer.echo(
                f"fingerprint: {summary['modules']} modules sketched (--json prints the pooled vector)"
            )


def _beside() -> Executor:
    """Where the sketch runs while the hashes are computed: a forked child, else a thread.

    The sketch is thousands of short numpy calls; in a thread of this process each one queues for the
    interpreter lock behind the six hash threads (measured: slower than computing both in turn). A child
    forked before any hash thread starts has its own lock and costs a few milliseconds.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    if "fork" not in multiprocessing.get_all_start_methods():
        return ThreadPoolExecutor(max_workers=1)
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))


def _fingerprint_summary(file: Path) -> dict[str, object]:
    from lorareg.adapter.fingerprint import fingerprint_file

    return fingerprint_file(file).summary()


def dataset_hash(
    directory: Path = typer.Argument(..., help="The training-set directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the digest as JSON."),
    show_list: bool = typer.Option(False, "--list", help="Print the exact listing that is hashed."),
) -> None:
    """Digest a training set: SHA-256 over sorted relative paths and per-file SHA-256.

    The exact byte format is in docs/dataset-hash.md; --list prints the listing that is hashed.
    """
    from lorareg.adapter.dataset import dataset_hash as compute

    digest = compute(directory)
    if show_list:
        typer.echo(safe_text_lines(digest.listing()), nl=False)
    if as_json:
        print_json(digest.to_json())
    elif not show_list:
        _print_dataset(digest)


def safe_text_lines(text: str) -> str:
    """``safe_text`` applied line by line, keeping the line breaks."""
    return "".join(safe_text(line) + "\n" for line in text.splitlines())


def _print_inspection(result: Inspection) -> None:

    f = result.facts
    table = _table()
    rows: list[tuple[str, str]] = [
        ("file", str(result.path)),
        ("size", f"{result.header.file_size:,} bytes"),
        ("family", f.family),
        ("format", f.format),
        ("type", f.type),
        ("rank", _rank_text(f.rank, f.ranks)),
        ("alpha", "none (alpha = rank)" if f.alpha is None else f"{f.alpha:g}"),
        ("components", ", ".join(f.components) or "none"),
        ("text encoder", "yes" if f.text_encoder else "no"),
        ("tensors", f"{f.tensors:,} ({f.parameters:,} parameters; {', '.join(f.dtypes) or 'no dtype'})"),
        ("targets", f"{len(f.targets)} modules"),
    ]
    rows += [("", t) for t in f.targets[:SHOWN_TARGETS]]
    if len(f.targets) > SHOWN_TARGETS:
        rows.append(("", f"… {len(f.targets) - SHOWN_TARGETS} more (--json lists all)"))
    if result.hashes is not None:
        rows += hash_rows(result.hashes.to_json())
    rows += [("flagged claim", c.message) for c in result.claims]
    rows += [("note", n) for n in f.notes]
    for key, value in result.header.metadata.items():
        rows.append((f"meta {safe_text(key, limit=60)}", safe_text(value, limit=SHOWN_VALUE_CHARS)))
    _add_rows(table, rows)
    stdout_console().print(table)


def _print_dataset(digest: DatasetDigest) -> None:

    table = _table()
    rows = [
        ("sha256", digest.sha256),
        ("format", "lorareg-dataset-hash v1 (docs/dataset-hash.md)"),
        ("files", f"{digest.files:,} regular files, {digest.total_bytes:,} bytes, nothing skipped"),
    ]
    rows += [("followed link", p) for p in digest.followed_symlinks]
    _add_rows(table, rows)
    stdout_console().print(table)


def _table() -> Table:
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    return table


def _add_rows(table: Table, rows: list[tuple[str, str]]) -> None:
    """Add rows as plain ``Text`` (never rich markup), every value escaped by ``safe_text``."""
    from rich.text import Text

    for label, value in rows:
        table.add_row(Text(safe_text(label)), Text(safe_text(value)))


def _rank_text(rank: int | None, ranks: tuple[int, ...]) -> str:
    if rank is None:
        return "none (no low-rank factors)"
    return str(rank) if len(ranks) <= 1 else f"{rank} (most common; distinct: {', '.join(map(str, ranks))})"

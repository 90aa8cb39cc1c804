"""``lorareg sample``: write the files a newcomer needs to try lorareg, made up on the spot.

The tour in ``README.md`` (``scripts/tour.sh``) starts from nothing. This command makes, by the suffix of
``--out``:

- ``.safetensors``: a small, structurally valid LoRA of ``--family`` with **random weights**, labelled as such
  in its metadata (``lorareg_sample``, ``lorareg_sample_note``): it publishes and verifies like any adapter
  and makes no meaningful images;
- ``.toml``: the example manifest of ``docs/examples/manifest.toml`` (publishable as-is by namespace ``me``);
- ``.png``: a generated picture labelled "SAMPLE"; with ``--made-with REF`` its provenance chunks (as
  ``lorareg.save_image`` writes them) record that registry adapter, as the registry describes it — an image
  to try ``lorareg provenance`` and the web UI's image check on, without a GPU.

The logic lives in ``lorareg.demo`` and ``lorareg.images``; this module only parses and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lorareg.cli._output import safe_text
from lorareg.errors import InputError

if TYPE_CHECKING:
    from lorareg.images.provenance import AdapterUse

_SUFFIXES = (".safetensors", ".toml", ".png")


def register(app: typer.Typer) -> None:
    """Add ``sample`` to the root app."""
    app.command("sample")(sample)


def sample(
    out: Path = typer.Option(..., "--out", help="File to write: .safetensors, .toml (manifest) or .png."),
    family: str = typer.Option(
        "sdxl", "--family", help="Base family of a sample adapter: sd1, sdxl, sd3, flux1, flux2."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random weights or picture."),
    made_with: list[str] = typer.Option(
        [],
        "--made-with",
        help="For a .png: a registry adapter (ns/name@version) to record as having made it.",
    ),
    registry: str | None = typer.Option(
        None, "--registry", envvar="LORAREG_REGISTRY", help="Registry URL (for --made-with)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a sample adapter, manifest or picture to try lorareg with (random weights, clearly labelled)."""
    suffix = out.suffix.lower()
    if suffix not in _SUFFIXES:
        raise InputError(
            f"--out {safe_text(out)}: unknown suffix {suffix or '(none)'!r}; use one of {_SUFFIXES}"
        )
    if out.exists() and not force:
        raise InputError(f"{safe_text(out)} exists; pass --force to overwrite it")
    if made_with and suffix != ".png":
        raise InputError("--made-with applies to a .png sample only")
    if suffix == ".safetensors":
        _write_adapter(out, family=family, seed=seed)
    elif suffix == ".toml":
        from lorareg.demo.example_manifest import EXAMPLE_MANIFEST

        out.write_text(EXAMPLE_MANIFEST, encoding="utf-8")
        typer.echo(f"{safe_text(out)}: example manifest (name me/pixel-art); edit it, then sign or publish")
    else:
        _write_picture(out, seed=seed, refs=made_with, registry=registry)


def _write_adapter(out: Path, *, family: str, seed: int) -> None:
    from lorareg.demo.samples import SAMPLE_FAMILIES, SAMPLE_NOTE, sample_adapter_bytes

    if family not in SAMPLE_FAMILIES:
        raise InputError(f"--family {safe_text(family)!r}: samples exist for {', '.join(SAMPLE_FAMILIES)}")
    out.write_bytes(sample_adapter_bytes(family, seed=seed, note=SAMPLE_NOTE))
    typer.echo(f"{safe_text(out)}: sample {family} LoRA with random weights (not a trained adapter)")


def _write_picture(out: Path, *, seed: int, refs: list[str], registry: str | None) -> None:
    from lorareg.demo.pictures import sample_picture

    uses: list[AdapterUse] = []
    if refs:
        if not registry:
            raise InputError("--made-with needs a registry: pass --registry URL or set LORAREG_REGISTRY")
        from lorareg.client import Client
        from lorareg.client.credentials import token_for

        with Client(registry, token_for(registry)) as client:
            uses = [_use_of(client.resolve(ref), ref) for ref in refs]
    data = sample_picture(seed)
    _save_with_attribution(data, out, uses)
    made = f", made with {', '.join(u.ref for u in uses)} (as its chunks claim)" if uses else ""
    typer.echo(f"{safe_text(out)}: sample picture{safe_text(made)}")


def _use_of(answer: dict[str, Any], ref: str) -> AdapterUse:
    """What ``save_image`` would record had the loader applied this version (``ref`` as resolved)."""
    from lorareg.images.provenance import AdapterUse

    manifest = _table(answer.get("manifest"))
    hashes = {k: str(v) for k, v in _table(answer.get("hashes")).items() if v}
    creators = [_table(c).get("name") for c in manifest.get("creators", [])]
    name, version = str(answer.get("name")), str(answer.get("version"))
    licence = _table(manifest.get("license")).get("id")
    return AdapterUse(
        adapter_name=name.split("/")[-1],
        ref=f"{name}@{version}",
        sha256=str(answer.get("sha256")),
        autov3=hashes.get("autov3", ""),
        weight=0.8,
        name=name,
        version=version,
        family=str(_table(manifest.get("base_model")).get("family", "unknown")),
        license=str(licence) if licence else None,
        creators=tuple(str(c) for c in creators if c),
        digests=hashes,
    )


def _table(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _save_with_attribution(data: bytes, out: Path, uses: list[AdapterUse]) -> None:
    """Save through ``save_image`` so the chunks are exactly what a real pipeline's image carries."""
    import io

    from PIL import Image

    from lorareg.images.provenance import record_adapter, save_image

    holder = _Attributed()
    for use in uses:
        record_adapter(holder, use)
    with Image.open(io.BytesIO(data)) as image:
        save_image(image, out, holder, prompt="a harbour at dawn (sample picture)")


class _Attributed:
    """Stands in for the pipeline ``save_image`` reads attribution from (no diffusers here)."""

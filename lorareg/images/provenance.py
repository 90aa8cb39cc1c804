"""Which verified adapters made an image, written into the PNG (or JPEG/WebP EXIF) and read back.

The loader records each adapter it loads on the pipeline object (:data:`PIPE_ATTRIBUTE`);
:func:`attribution` lists those still in use, :func:`save_image` writes two PNG text chunks (JPEG and
WebP: the same two records in EXIF, see ``lorareg.images.exif``):

- ``parameters``: the AUTOMATIC1111 text (prompt with ``<lora:name:weight>`` tags, then one line of
  ``Key: value`` pairs in A1111's order, ``Steps`` first, with ``Lora hashes: "name: <AutoV3 first 12
  hex>, ..."``; ``lorareg.images.settings``), which A1111 and Civitai parse to attribute an image;
- ``lorareg``: JSON with the full refs, all digests, creators, licence and weights.

:func:`read_provenance` reads both back from an untrusted file (strict JSON, size caps) and
:func:`current_status` asks a registry (through a resolve callable the caller provides) what became of
each adapter since: by its recorded ``name@version``, cross-checked against its SHA-256. Pillow only:
no torch, no network; the CLI and loader wire the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lorareg import __version__
from lorareg.errors import InputError, LoraregError
from lorareg.images import settings as _settings

PIPE_ATTRIBUTE = "_lorareg_adapters"  # dict[adapter_name, AdapterUse] kept on the pipeline object
MERGED_ATTRIBUTE = "_lorareg_merged"  # LyCORIS adapters the loader merged into the weights (loader/merge.py)
PARAMETERS_CHUNK = "parameters"  # the A1111 key Civitai and image viewers read
LORAREG_CHUNK = "lorareg"
SCHEMA_VERSION = 1
AUTOV3_SHORT_HEX = _settings.AUTOV3_SHORT_HEX
_EXIF_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}  # suffix -> Pillow format; else PNG
MAX_CHUNK_BYTES = 1 * 2**20  # a provenance chunk larger than this is not ours
_TAG_NAME = re.compile(r"[^A-Za-z0-9_\-]")


@dataclass(frozen=True, slots=True)
class AdapterUse:
    """One verified adapter applied to a pipeline, as attribution reports it."""

    adapter_name: str  # the diffusers adapter name on the pipeline
    ref: str  # name@version, or the local path it was loaded from
    sha256: str
    autov3: str
    weight: float
    name: str | None = None
    version: str | None = None
    family: str = "unknown"
    license: str | None = None
    creators: tuple[str, ...] = ()
    digests: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["creators"] = list(self.creators)
        out["digests"] = dict(self.digests)
        return out

    @classmethod
    def from_json(cls, obj: object) -> AdapterUse:
        """Build from untrusted JSON (an image's chunk); wrong shapes raise ``InputError``."""
        if not isinstance(obj, dict):
            raise InputError(f"adapter entry is {type(obj).__name__}, expected an object")
        try:
            use = cls(**{k: obj[k] for k in obj if k in cls.__dataclass_fields__})
        except TypeError as e:
            raise InputError(f"adapter entry is missing fields: {e}") from e
        _check_types(use)
        return AdapterUse(**{**asdict(use), "creators": tuple(use.creators), "weight": float(use.weight)})

    @property
    def tag_name(self) -> str:
        """The name used in ``<lora:…>`` tags and ``Lora hashes`` (no ``:``, ``,`` or spaces)."""
        return _TAG_NAME.sub("_", self.adapter_name) or "lora"


@dataclass(frozen=True, slots=True)
class ImageProvenance:
    """What an image says about itself: the A1111 text and the lorareg adapter list (both untrusted)."""

    parameters: str | None
    adapters: tuple[AdapterUse, ...]
    prompt: str | None = None


@dataclass(frozen=True, slots=True)
class AdapterStatus:
    """A registry's answer about one adapter of an image: active, yanked, revoked, mismatch or unknown.

    ``registry_ref`` is the version the registry answered about; ``mismatch`` says how the registry's
    record of the image's ``name@version`` differs from the image (another SHA-256), in which case
    ``status`` is ``mismatch`` and the other fields describe the version holding the image's SHA-256.
    """

    adapter: AdapterUse
    status: str
    reason: str | None = None
    revoked_at: str | None = None  # ISO 8601, as the registry wrote it
    yanked_at: str | None = None
    registry_ref: str | None = None
    mismatch: str | None = None


def record_adapter(pipe: Any, use: AdapterUse) -> None:
    """Remember on ``pipe`` that lorareg loaded ``use`` (the loader calls this after a verified load)."""
    registry = dict(getattr(pipe, PIPE_ATTRIBUTE, {}))
    registry[use.adapter_name] = use
    setattr(pipe, PIPE_ATTRIBUTE, registry)


def forget_adapter(pipe: Any, adapter_name: str) -> None:
    """Drop ``adapter_name`` from the record on ``pipe`` (after unloading it)."""
    registry = dict(getattr(pipe, PIPE_ATTRIBUTE, {}))
    registry.pop(adapter_name, None)
    setattr(pipe, PIPE_ATTRIBUTE, registry)


def attribution(pipe: Any) -> list[AdapterUse]:
    """The verified adapters in use on ``pipe``: loaded by lorareg, still present and active.

    An adapter the caller deleted or deactivated with diffusers' own methods is left out, so the list never
    claims an adapter that did not touch the image.
    """
    registry: dict[str, AdapterUse] = getattr(pipe, PIPE_ATTRIBUTE, {})
    active = _active_names(pipe)
    return [use for name, use in registry.items() if active is None or name in active]


def parameters_text(uses: list[AdapterUse], *, prompt: str | None, params: Mapping[str, object]) -> str:
    """The A1111 ``parameters`` text in A1111's key order (``lorareg.images.settings``)."""
    return _settings.parameters_text(uses, prompt=prompt, params=params, version=__version__)


def save_image(
    image: Any, path: str | Path, pipe: Any, *, prompt: str | None = None, **params: object
) -> Path:
    """Save ``image`` with the A1111 ``parameters`` text and lorareg's record of the verified adapters.

    PNG gets two text chunks (``parameters``, ``lorareg``); JPEG and WebP (by the suffix ``.jpg``,
    ``.jpeg``, ``.webp``) get EXIF: ``UserComment`` as A1111 writes it, lorareg's JSON in ``MakerNote``.
    Settings the pipeline knows (steps, sampler, CFG scale after a run; size; model name) are filled in;
    the call's values win.

    Args:
        image: the generated ``PIL.Image.Image``.
        path: where to write; PNG unless the suffix names JPEG or WebP.
        pipe: the pipeline that made it; its verified adapters are attributed.
        prompt: the prompt, written with ``<lora:name:weight>`` tags appended.
        **params: generation settings in A1111 style (``steps=30, cfg_scale=7, seed=1, sampler="Euler"``,
            ``negative_prompt=...``); keys become ``Steps``, ``CFG scale``, ...

    Returns:
        The path written.
    """
    uses = attribution(pipe)
    settings = {**_settings.pipeline_settings(pipe, image), **params}
    text = parameters_text(uses, prompt=prompt, params=settings)
    payload = {"schema": SCHEMA_VERSION, "generator": f"lorareg {__version__}", "prompt": prompt}
    payload["adapters"] = [u.to_json() for u in uses]
    record = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    out = Path(path)
    kind = _EXIF_FORMATS.get(out.suffix.lower())
    if kind is None:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text(PARAMETERS_CHUNK, text)
        info.add_itxt(LORAREG_CHUNK, record)
        image.save(out, format="PNG", pnginfo=info)
        return out
    from lorareg.images.exif import exif_bytes

    rgb = image.convert("RGB") if kind == "JPEG" and image.mode != "RGB" else image
    rgb.save(out, format=kind, exif=exif_bytes(text, record), quality=95)
    return out


def read_provenance(path: str | Path) -> ImageProvenance:
    """Read the provenance of a PNG, JPEG or WebP (untrusted input): text chunks, else EXIF.

    Raises:
        InputError: not a readable image, or a ``lorareg`` record that is not the expected JSON.
    """
    from PIL import Image, UnidentifiedImageError

    from lorareg.images.exif import read_exif_provenance

    try:
        with Image.open(path) as image:
            image.load()
            text = dict(getattr(image, "text", {}))
            parameters, raw = text.get(PARAMETERS_CHUNK), text.get(LORAREG_CHUNK)
            if parameters is None and raw is None:
                parameters, raw = read_exif_provenance(image, where=str(path))
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise InputError(f"{path}: cannot read image text chunks: {e}") from e
    if raw is None:
        return ImageProvenance(parameters, ())
    return _parse_lorareg_chunk(raw, parameters, where=str(path))


def current_status(
    provenance: ImageProvenance, resolve: Callable[[str], Mapping[str, Any]]
) -> list[AdapterStatus]:
    """Ask a registry what became of each adapter of an image since it was made.

    Each adapter is resolved by the ``name@version`` the image records, and the registry's SHA-256 is
    compared with the image's: the same bytes may be published under several names, so a digest alone can
    answer about another version. A mismatch is reported (status ``mismatch``); then, and when the image
    has no ``name@version`` or the registry does not know it, the image's SHA-256 is resolved instead.

    Args:
        provenance: what the image claims.
        resolve: ``ref or sha256 -> version JSON`` (the registry's ``/api/v1/resolve`` answer, with
            ``status``, ``revocation_reason``, ``revoked_at``, ``yanked_at``); a ``LoraregError`` it
            raises means "not known here".
    """
    return [_status_of(use, resolve) for use in provenance.adapters]


def _status_of(use: AdapterUse, resolve: Callable[[str], Mapping[str, Any]]) -> AdapterStatus:
    mismatch = None
    if use.name and use.version:
        ref = f"{use.name}@{use.version}"
        try:
            answer = resolve(ref)
        except LoraregError:
            answer = None
        if answer is not None and answer.get("sha256") == use.sha256:
            return _from_answer(use, answer, mismatch=None)
        if answer is not None:
            mismatch = (
                f"registry's {ref} has sha256 {str(answer.get('sha256'))[:16]}…, "
                f"the image records {use.sha256[:16]}…"
            )
    try:
        by_digest = resolve(use.sha256)
    except LoraregError as e:
        return AdapterStatus(use, "mismatch" if mismatch else "unknown", str(e), mismatch=mismatch)
    return _from_answer(use, by_digest, mismatch=mismatch)


def _from_answer(use: AdapterUse, answer: Mapping[str, Any], *, mismatch: str | None) -> AdapterStatus:
    status = str(answer.get("status", "unknown"))
    reason = answer.get("revocation_reason")
    name, version = answer.get("name"), answer.get("version")
    return AdapterStatus(
        use,
        "mismatch" if mismatch else status,
        str(reason) if reason else (f"by sha256: {status}" if mismatch else None),
        revoked_at=_text_or_none(answer.get("revoked_at")),
        yanked_at=_text_or_none(answer.get("yanked_at")),
        registry_ref=f"{name}@{version}" if name and version else None,
        mismatch=mismatch,
    )


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _parse_lorareg_chunk(raw: str, parameters: str | None, *, where: str) -> ImageProvenance:
    if len(raw.encode()) > MAX_CHUNK_BYTES:
        raise InputError(f"{where}: lorareg chunk is {len(raw.encode())} bytes; at most {MAX_CHUNK_BYTES}")
    from lorareg.manifest.canonical import strict_json_loads

    obj = strict_json_loads(raw.encode(), max_bytes=MAX_CHUNK_BYTES)
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA_VERSION:
        raise InputError(f"{where}: lorareg chunk is not schema {SCHEMA_VERSION} JSON")
    adapters = obj.get("adapters")
    if not isinstance(adapters, list):
        raise InputError(f"{where}: lorareg chunk has no adapter list")
    prompt = obj.get("prompt")
    uses = tuple(AdapterUse.from_json(a) for a in adapters)
    return ImageProvenance(parameters, uses, prompt if isinstance(prompt, str) else None)


def _check_types(use: AdapterUse) -> None:
    strings = (use.adapter_name, use.ref, use.sha256, use.autov3, use.family)
    optional = (use.name, use.version, use.license)
    ok = all(isinstance(s, str) for s in strings) and all(s is None or isinstance(s, str) for s in optional)
    ok = ok and isinstance(use.weight, int | float) and not isinstance(use.weight, bool)
    ok = ok and isinstance(use.creators, list | tuple) and all(isinstance(c, str) for c in use.creators)
    ok = ok and isinstance(use.digests, dict) and all(isinstance(v, str) for v in use.digests.values())
    if not ok:
        raise InputError(f"adapter entry {use.adapter_name!r:.80} has fields of the wrong type")


def _active_names(pipe: Any) -> set[str] | None:
    """Names diffusers reports active, or None when the pipeline cannot say (then trust the record)."""
    merged = set(getattr(getattr(pipe, MERGED_ATTRIBUTE, None), "adapters", {}))  # always active
    getter = getattr(pipe, "get_active_adapters", None)
    if getter is None:
        return merged or None
    try:
        return set(getter()) | merged
    except (ValueError, AttributeError):
        return merged

"""Read the provenance hints in a file's metadata and flag the ones that contradict the tensors.

Metadata strings (kohya ``ss_*``, ``modelspec.*``, diffusers ``lora_adapter_metadata``) are written by
trainers and by anyone with a text editor; trainers are also known to write wrong values. So they are never
facts: the recognised ones are surfaced as ``hints`` and every one that disagrees with what the tensors show
becomes a :class:`MetadataClaim`. Hash claims (``sshs_model_hash``, ``modelspec.hash_sha256``) need the file's
hashes and are checked by :func:`hash_claims`, called by ``lorareg.adapter.inspect``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from lorareg.adapter.facts.model import MetadataClaim

HINT_KEYS = (
    "ss_base_model_version",
    "ss_v2",
    "ss_network_module",
    "ss_network_dim",
    "ss_network_alpha",
    "ss_network_args",
    "ss_output_name",
    "ss_sd_model_name",
    "sshs_model_hash",
    "sshs_legacy_hash",
    "modelspec.architecture",
    "modelspec.title",
    "modelspec.hash_sha256",
    "modelspec.trigger_phrase",
    "lora_adapter_metadata",
)
MAX_HINT_CHARS = 1024  # hints are a summary; the full strings stay in ``metadata``
_SHOWN_VALUE_CHARS = 80  # how much of an untrusted value a claim message quotes
_BASE_VERSION_PREFIXES = (  # ss_base_model_version (sd-scripts) -> family
    ("sdxl", "sdxl"),
    ("sd_v1", "sd1"),
    ("sd_v2", "sd2"),
    ("sd3", "sd3"),
    ("flux1", "flux1"),
    ("chroma", "flux1"),
    ("flux2", "flux2"),
)
_ARCHITECTURE_PREFIXES = (  # modelspec.architecture (ModelSpec / sd-scripts) -> family
    ("stable-diffusion-xl", "sdxl"),
    ("stable-diffusion-v1", "sd1"),
    ("stable-diffusion-v2", "sd2"),
    ("stable-diffusion-v3", "sd3"),
    ("stable-diffusion-3", "sd3"),
    ("flux-1", "flux1"),
    ("flux.1", "flux1"),
    ("chroma", "flux1"),
    ("flux-2", "flux2"),
    ("flux.2", "flux2"),
    ("stable-cascade", "wuerstchen"),
    ("kandinsky", "kandinsky"),
)


def metadata_hints(metadata: Mapping[str, str]) -> dict[str, str]:
    """The recognised provenance keys present in ``metadata``, values cut to :data:`MAX_HINT_CHARS`."""
    return {k: metadata[k][:MAX_HINT_CHARS] for k in HINT_KEYS if k in metadata}


def metadata_claims(
    metadata: Mapping[str, str], *, family: str, rank: int | None, alpha: float | None
) -> list[MetadataClaim]:
    """Claims about family, rank and alpha that the tensors contradict."""
    claims = _family_claims(metadata, family)
    dim = _number(metadata.get("ss_network_dim"))
    if dim is not None and rank is not None and dim != rank:
        claims.append(_claim("ss_network_dim", metadata["ss_network_dim"], f"rank {rank}"))
    net_alpha = _number(metadata.get("ss_network_alpha"))
    if net_alpha is not None and alpha is not None and not math.isclose(net_alpha, alpha, rel_tol=1e-3):
        claims.append(_claim("ss_network_alpha", metadata["ss_network_alpha"], f"alpha {alpha:g}"))
    for key, value in peft_config(metadata).items():
        if key.endswith(".r") and isinstance(value, int) and rank is not None and value != rank:
            claims.append(_claim(f"lora_adapter_metadata[{key}]", str(value), f"rank {rank}"))
    return claims


def hash_claims(metadata: Mapping[str, str], *, autov3: str) -> list[MetadataClaim]:
    """Embedded tensor-data hashes (kohya ``sshs_model_hash``, ModelSpec ``hash_sha256``) that do not equal
    the computed AutoV3 (SHA-256 of the bytes after the header)."""
    claims = []
    for key in ("sshs_model_hash", "modelspec.hash_sha256"):
        value = metadata.get(key)
        if value is None:
            continue
        digest = value.strip().lower().removeprefix("0x")
        if digest != autov3:
            claims.append(_claim(key, value, f"autov3 {autov3}", what="the tensor data hashes to"))
    return claims


def peft_config(metadata: Mapping[str, str]) -> dict[str, object]:
    """diffusers ``lora_adapter_metadata`` as a dict, or ``{}`` when absent or not a JSON object."""
    raw = metadata.get("lora_adapter_metadata")
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def claimed_family(key: str, value: str) -> str | None:
    """The family a metadata value names, or ``None`` when it names none we know."""
    text = value.strip().lower()
    if key == "ss_v2":
        return "sd2" if text == "true" else None
    table = _BASE_VERSION_PREFIXES if key == "ss_base_model_version" else _ARCHITECTURE_PREFIXES
    return next((fam for prefix, fam in table if text.startswith(prefix)), None)


def _family_claims(metadata: Mapping[str, str], family: str) -> list[MetadataClaim]:
    if family == "unknown":
        return []
    claims = []
    for key in ("ss_base_model_version", "ss_v2", "modelspec.architecture"):
        value = metadata.get(key)
        said = claimed_family(key, value) if value is not None else None
        if value is not None and said is not None and said != family:
            claims.append(_claim(key, value, family))
    return claims


def _claim(key: str, value: str, observed: str, *, what: str = "tensors say") -> MetadataClaim:
    shown = value if len(value) <= _SHOWN_VALUE_CHARS else value[: _SHOWN_VALUE_CHARS - 1] + "…"
    message = f"{key}={shown} but {what} {observed}"
    return MetadataClaim(key=key, value=value[:MAX_HINT_CHARS], observed=observed, message=message)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None

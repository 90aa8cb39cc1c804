"""The value types of adapter facts: what a file shows about itself, and metadata claims that contradict it.

Pure data: no parsing, no I/O. ``AdapterFacts`` is what the manifest, the verifier and the loader trust, so it
is computed only from tensor names and shapes (see :func:`lorareg.adapter.facts.compute_facts`); the file's
own metadata appears only as ``hints`` (untrusted strings) and ``claims`` (hints that contradict the tensors).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

FAMILIES: tuple[str, ...] = (
    "sd1",
    "sd2",
    "sdxl",
    "sd3",
    "flux1",
    "flux2",
    "kandinsky",
    "wuerstchen",
    "unknown",
)
FORMATS: tuple[str, ...] = ("peft", "diffusers", "kohya", "lycoris", "bfl", "xlabs", "onetrainer", "unknown")
TYPES: tuple[str, ...] = ("lora", "locon", "loha", "lokr")


@dataclass(frozen=True, slots=True)
class MetadataClaim:
    """A metadata value that contradicts what the tensors (or the file's hashes) show: flagged, not believed.

    ``key``/``value`` are the file's own strings (untrusted: escape before printing); ``observed`` is what
    lorareg computed instead; ``message`` is one human sentence saying both.
    """

    key: str
    value: str
    observed: str
    message: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AdapterFacts:
    """Facts read from tensor names and shapes (never from metadata).

    ``rank``/``alpha`` are the most common values (``None`` when the file has none); ``ranks`` lists every
    distinct rank. ``targets`` are sorted module paths prefixed by their component (``unet.``,
    ``transformer.``, ``text_encoder.``...), diffusers-style dotted where the name could be mapped, else the
    trainer's own name. ``parameters`` counts the values of every tensor in the file.
    """

    family: str
    format: str
    type: str
    rank: int | None
    ranks: tuple[int, ...]
    alpha: float | None
    targets: tuple[str, ...]
    text_encoder: bool
    components: tuple[str, ...]
    tensors: int
    parameters: int
    dtypes: tuple[str, ...]
    notes: tuple[str, ...] = ()
    claims: tuple[MetadataClaim, ...] = ()
    hints: dict[str, str] = field(default_factory=dict)
    alternatives: tuple[str, ...] = ()  # families the tensors cannot rule out (the pipeline decides)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists, claims as dicts)."""
        return {
            "family": self.family,
            "format": self.format,
            "type": self.type,
            "rank": self.rank,
            "ranks": list(self.ranks),
            "alpha": self.alpha,
            "targets": list(self.targets),
            "text_encoder": self.text_encoder,
            "components": list(self.components),
            "tensors": self.tensors,
            "parameters": self.parameters,
            "dtypes": list(self.dtypes),
            "notes": list(self.notes),
            "claims": [c.to_json() for c in self.claims],
            "hints": dict(self.hints),
        }

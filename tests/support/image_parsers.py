"""The two outside readers of generation parameters, re-implemented from their documented behaviour.

Written for the tests (not copied): what AUTOMATIC1111's ``parse_generation_parameters`` and its Lora
extension, and Civitai's A1111 metadata parser, do with an image's ``parameters`` text, so a test can ask
"would these readers attribute the image to the adapters lorareg loaded?".

A1111 (``modules/infotext_utils.py``, ``extensions-builtin/Lora``): the text is stripped and split into
lines; the last line is settings only if a ``Key: value`` pattern (key ``\\w[\\w \\-/]+``, value a
JSON-quoted string or anything up to ``,``) matches at least 3 times, else it is prompt too. Lines up to
``Negative prompt:`` are the prompt. Quoted values are JSON-unquoted. ``Lora hashes`` is split on ``,`` then
on the first ``:``. Adapter weights come from the prompt's ``<lora:name:weight>`` extra-network tags.

Civitai (``automatic.metadata.ts``): only text containing ``Steps: `` is parsed; the settings line is the
first line *starting* with ``Steps: ``; it is scanned character by character (``:`` ends a key, ``,`` ends
a value, a ``"``-quoted value is parsed again as a details line, so ``Lora hashes`` becomes a mapping);
the other lines are the prompt, split at ``Negative prompt:``; resources are the prompt's
``<lora|hypernet:name:weight>`` tags (name ``[A-Za-z0-9_.-]+``, weight ``[0-9.]+``) whose hash is looked
up by name in ``Lora hashes`` (a hash without a tag becomes a resource without weight).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from lorareg.images.provenance import AdapterUse, read_provenance
from lorareg.images.settings import weight_text

A1111_MIN_SETTINGS = 3  # A1111 treats a last line with fewer Key: value pairs as prompt
_A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_A1111_SIZE = re.compile(r"^(\d+)x(\d+)$")
_A1111_EXTRA_NET = re.compile(r"<(\w+):([^>]+)>")
_CIVITAI_NET = re.compile(r"<(lora|hypernet):([a-zA-Z0-9_.\-]+):([0-9.]+)>")


@dataclass
class Parsed:
    """What a reader recovered: prompt, settings, and per adapter name its (hash, weight)."""

    prompt: str
    settings: dict[str, object]
    loras: dict[str, tuple[str | None, float | None]] = field(default_factory=dict)


def a1111_parse(text: str) -> Parsed:
    """A1111's reading of a ``parameters`` text, with the Lora extension's hashes and tag weights."""
    *lines, last = text.strip().split("\n")
    if len(_A1111_PARAM.findall(last)) < A1111_MIN_SETTINGS:
        lines.append(last)
        last = ""
    prompt_lines: list[str] = []
    for line in lines:
        if line.strip().startswith("Negative prompt:"):
            break
        prompt_lines.append(line.strip())
    settings: dict[str, object] = {}
    for key, value in _A1111_PARAM.findall(last):
        if len(value) > 1 and value[0] == '"' and value[-1] == '"':
            value = json.loads(value)
        size = _A1111_SIZE.match(value)
        if size:
            settings[f"{key}-1"], settings[f"{key}-2"] = size.group(1), size.group(2)
        else:
            settings[key] = value
    prompt = "\n".join(prompt_lines)
    weights = {}
    for kind, args in _A1111_EXTRA_NET.findall(prompt):
        if kind == "lora":
            name, _, weight = args.partition(":")
            weights[name] = float(weight.split(":")[0]) if weight else 1.0
    hashes = {}
    for item in str(settings.get("Lora hashes", "")).split(","):
        name, sep, value = item.strip().partition(":")
        if sep:
            hashes[name.strip()] = value.strip()
    loras = {n: (hashes.get(n), weights.get(n)) for n in {*hashes, *weights}}
    return Parsed(prompt, settings, loras)


def civitai_parse(text: str) -> Parsed | None:
    """Civitai's reading; ``None`` when it would not parse the text at all (no ``Steps: ``)."""
    if "Steps: " not in text:
        return None
    lines = [line for line in text.split("\n") if line.strip()]
    details = next((line for line in lines if line.startswith("Steps: ")), None)
    if details is not None:
        lines.remove(details)
        details = re.sub(r",\s*$", "", details)
    settings = civitai_details(details or "")
    prompt = "\n".join(lines).split("Negative prompt:")[0].strip()
    loras: dict[str, tuple[str | None, float | None]] = {
        name: (None, float(weight)) for kind, name, weight in _CIVITAI_NET.findall(prompt) if kind == "lora"
    }
    hashes = settings.pop("Lora hashes", None)
    if isinstance(hashes, dict):
        for name, value in hashes.items():
            loras[name] = (str(value), loras.get(name, (None, None))[1])
    return Parsed(prompt, settings, loras)


def civitai_details(line: str) -> dict[str, object]:
    """Civitai's character scan of a settings line (quoted values parsed again, as a nested mapping)."""
    result: dict[str, object] = {}
    key, value, quoted = "", "", False
    for char in line:
        if char == '"':
            if quoted:
                result[key] = civitai_details(value.strip())
                key = ""
            quoted = not quoted
        elif char == ":" and not quoted:
            key, value = value.strip(), ""
        elif char == "," and not quoted:
            if key:
                result[key] = value.strip()
            key, value = "", ""
        else:
            value += char
    if key:
        result[key] = value.strip()
    return result


def assert_readers_attribute(path: Path, uses: tuple[AdapterUse, ...]) -> dict[str, object]:
    """Both readers recover every adapter's 12-hex AutoV3 and its weight; returns A1111's settings."""
    text = read_provenance(path).parameters
    assert text is not None
    expected = {u.adapter_name: (u.autov3[:12], float(weight_text(u.weight))) for u in uses}
    a1111 = a1111_parse(text)
    assert a1111.loras == expected, text
    civitai = civitai_parse(text)
    assert civitai is not None and civitai.loras == expected, text
    assert civitai.settings["Steps"] == a1111.settings["Steps"]
    assert read_provenance(path).adapters == uses
    return a1111.settings

"""The example manifest, as ``lorareg sample --out my_manifest.toml`` writes it.

The same text as ``docs/examples/manifest.toml`` (a test keeps them equal): publishable as-is by the tour's
``me`` namespace, with its one parent marked external so the tour's registry need not hold it.
"""

from __future__ import annotations

EXAMPLE_MANIFEST = '''\
# lorareg manifest v1 — what the author writes. Fields the file itself shows (size, digests,
# base_model.family, adapter.*) may be left out: `lorareg sign` computes them from the file.
# `lorareg sample --out my_manifest.toml` writes this file; the README's tour publishes it as namespace `me`.
name = "me/pixel-art"
version = "1.2.0"
created = 2025-03-14T09:30:00Z
description = """
Crisp 16-colour pixel-art style for SDXL.
Works best at weight 0.6-0.9 with the trigger word below."""
trigger_words = ["pxart style"]
tags = ["pixel-art", "style", "retro"]

[base_model]
id = "stabilityai/stable-diffusion-xl-base-1.0"

[dataset]
sha256 = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"
images = 412
source = "Acme in-house sprite archive, 1994-2003"

[consent]
subject = "style"
status = "not-required"

[license]
id = "CreativeML-OpenRAIL-M"
url = "https://huggingface.co/spaces/CompVis/stable-diffusion-license"
commercial_use = true
derivatives = true
attribution_required = true

[[creators]]
name = "Acme Studio"
role = "publisher"
contact = "https://acme.example/contact"

[[creators]]
name = "Jo Park"
role = "trainer"

# A parent published elsewhere is marked with `registry` (a URL or a name); without it, the registry you
# publish to must hold that exact version (and sha256), or the publish is refused.
[[derived_from]]
name = "acme/pixel-art"
version = "1.1.0"
sha256 = "9b74c9897bac770ffc029102a200c5de9b74c9897bac770ffc029102a200c5de"
registry = "https://registry.acme.example"
'''

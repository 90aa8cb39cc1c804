#!/usr/bin/env bash
# The README's "A short tour", exactly: README.md shows the lines between "tour:begin" and "tour:end", and
# tests/test_tour.py runs this script end to end against a live `lorareg serve --demo` (and checks that the
# README and this file agree). It works in a fresh scratch directory and makes every file it uses.
#
# Needs: `lorareg` on PATH (. .venv/bin/activate), the registry `make demo` started, and
#   LORAREG_REGISTRY  its URL (make demo prints it; default http://127.0.0.1:8000)
#   LORAREG_HOME      its data directory, for the admin step (make demo: ./lorareg-data)
set -euo pipefail
export LORAREG_REGISTRY="${LORAREG_REGISTRY:-http://127.0.0.1:8000}"
export LORAREG_HOME="$(cd "${LORAREG_HOME:-./lorareg-data}" && pwd)"
cd "$(mktemp -d "${TMPDIR:-/tmp}/lorareg-tour.XXXXXX")"
echo "tour: working in $PWD"
set -x
# tour:begin
# Make the files the tour uses: a sample LoRA (random weights, labelled so), a manifest, a training set.
lorareg sample --family sdxl --out my_lora.safetensors
lorareg sample --out my_manifest.toml          # = docs/examples/manifest.toml, namespace "me"
mkdir training-images
lorareg sample --out training-images/0001.png --seed 1
lorareg sample --out training-images/0002.png --seed 2

# Read a file: facts from its header and all six hashes (nothing of its metadata is believed).
lorareg inspect my_lora.safetensors            # family, format, type, rank, alpha, targets, hashes
lorareg inspect my_lora.safetensors --json
lorareg dataset-hash ./training-images         # deterministic digest of a training set

# Sign and verify locally.
lorareg keygen --out me                        # me.key (0600) and me.pub; prints the key id
lorareg sign my_lora.safetensors --manifest my_manifest.toml --key me.key   # -> my_lora.safetensors.sig
lorareg verify my_lora.safetensors --key me.pub

# Trust the registry, then browse and pull with verification.
lorareg trust add-registry "$LORAREG_REGISTRY" --yes
lorareg search ink --family sdxl
lorareg pull inkworks/ink-wash@2.0.0 --verify  # prints the cached path; refused if anything fails

# Publish (an admin registers your namespace and key first; that prints your publish token).
LORAREG_TOKEN=$(lorareg admin publisher add me --key me.pub | tail -n 1)
lorareg publish my_lora.safetensors --manifest my_manifest.toml --key me.key --token "$LORAREG_TOKEN"

# An image that says which adapters made it (here a generated sample picture; in Python, save_image).
lorareg sample --out harbour.png --made-with inkworks/ink-wash@2.0.0
lorareg provenance harbour.png                 # each adapter, its licence and current status

# Takedowns: anyone files, a reviewer decides; an upheld takedown revokes everywhere.
TAKEDOWN=$(lorareg takedown request inkworks/ink-wash@2.0.0 --reason style --claimant "A. Artist" \
    --contact a@example.org --details "my style, no consent" --good-faith)
REVIEWER_TOKEN=$(lorareg admin token create --role reviewer --expires 1h | tail -n 1)
lorareg takedown decide "$TAKEDOWN" --uphold --reason "style used without consent" --token "$REVIEWER_TOKEN"
lorareg provenance harbour.png                 # now: revoked, and why
lorareg pull inkworks/ink-wash@2.0.0 --verify || echo "refused (exit $?): revoked"
# tour:end
set +x
echo "tour: done"

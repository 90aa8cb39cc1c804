#!/usr/bin/env bash
# README tour, "Bring your library": import a folder of LoRAs with their UI sidecars, publish it, install one
# into a ComfyUI folder, audit that folder, and watch an upheld takedown get caught and quarantined.
# tests/test_folders_tour.py runs this script as written against a live registry.
#
# Needs: LORAREG_REGISTRY, LORAREG_TOKEN (publisher of $NS), LORAREG_TRUST (trusting the registry and $KEY),
# REVIEWER_TOKEN, and: LIBRARY (a folder of .safetensors with sidecars), NS, KEY (your private key),
# ADAPTER (the adapter name one file was imported as), WORK (an empty scratch folder).
set -euo pipefail
cd "$WORK"

# 1. What is in the library? Draft manifests (one TOML per adapter) and a report; nothing is published.
lorareg import "$LIBRARY" --out drafts
# 2. Sign and publish all of it (rerunning publishes only what is missing). Licence and consent that no
#    sidecar states stay "unknown": those versions are "unreviewed" and the default policy refuses them.
lorareg import "$LIBRARY" --out drafts --publish --namespace "$NS" --key "$KEY"
# 3. Review one: state its consent in the draft, bump the version, publish the reviewed version.
sed -e 's/^version = "1.0.0"/version = "1.0.1"/' \
    -e 's/^subject = "unknown"/subject = "style"/' -e 's/^status = "unknown"/status = "not-required"/' \
    "drafts/$ADAPTER.toml" > "$ADAPTER-reviewed.toml"
FILE=$(python3 -c 'import json,sys; r=json.load(open("drafts/import-report.json")); print(next(a["paths"][0] for a in r["adapters"] if a["name"].endswith("/"+sys.argv[1])))' "$ADAPTER")
lorareg publish "$FILE" --manifest "$ADAPTER-reviewed.toml" --key "$KEY"
# 4. Install it where ComfyUI finds it: the file (hard-linked from the verified cache), its .sig,
#    LoRA Manager's .metadata.json (trigger words, base model), the preview, a credit line.
mkdir -p ComfyUI/models/loras
lorareg pull "$NS/$ADAPTER@1.0.1" --into ComfyUI --layout comfyui
# 5. Audit the render node's folder: every file verified, known, revoked, modified, unknown or pickle.
lorareg audit ComfyUI/models/loras
# 6. A takedown is filed and upheld; the next audit exits 1 and moves the file and its sidecars aside.
ID=$(lorareg takedown request "$NS/$ADAPTER@1.0.1" --reason style --claimant "A. Artist" \
     --contact a@example.org --details "my style, no consent" --good-faith --json \
     | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
LORAREG_TOKEN=$REVIEWER_TOKEN lorareg takedown decide "$ID" --uphold --reason "style used without consent"
if lorareg audit ComfyUI/models/loras --quarantine quarantine; then
    echo "audit should have failed" >&2; exit 1
fi
ls quarantine

#!/usr/bin/env bash
# Quick start: installs what is missing, then backs up a local registry's sample images into the
# directory store, restores them into a second registry and compares digests (scripts/demo.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
exec npx tsx scripts/demo.ts

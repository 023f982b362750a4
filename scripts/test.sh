#!/usr/bin/env bash
# Runs the whole test suite from a fresh clone: installs what is missing, type-checks, lints, runs vitest
# (unit, integration against a real registry and moto, CDK assertions, local workflow runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo; echo "==== Type check (tsc --noEmit)"
npx tsc --noEmit -p . </dev/null
echo; echo "==== Lint (Biome, knip, dependency rules)"
npm run --silent lint </dev/null
echo; echo "==== Tests (npm test)"
npm test </dev/null

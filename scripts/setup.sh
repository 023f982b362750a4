#!/usr/bin/env bash
# Prepares a fresh Debian 12 clone for the demo, the tests and the benchmark: the tools they run
# against (a real registry, skopeo, umoci, htpasswd, moto) and the locked npm dependencies.
# Idempotent: installs only what is missing. Needs root (or sudo) only when something is missing.
#
# Environment: MOTO_PYTHON  python interpreter that has moto (default: pyenv 3.11.7, else a venv)
#              MOTO_PIP_SPEC what to pip install when moto is missing (default: moto[server]==5.2.1)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."

START=$SECONDS
section() { printf '\n==== %s  [+%ss]\n' "$*" "$((SECONDS - START))"; }
fail() { printf '\nCI FAILED: %s\n' "$*" >&2; exit 1; }

run_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else fail "need root for: $*"; fi
}

APT_UPDATED=
apt_install() {
  if [ -z "$APT_UPDATED" ]; then
    run_as_root apt-get update -q </dev/null
    APT_UPDATED=1
  fi
  run_as_root apt-get install -y -q --no-install-recommends "$@" </dev/null
}

section "Machine"
printf 'os:   %s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
printf 'cpus: %s   user: %s   dir: %s\n' "$(nproc)" "$(id -un)" "$PWD"

section "Node.js"
command -v node >/dev/null || fail "node is not installed (need node >= 20.19; Debian 12's apt only has 18)"
NODE_VERSION=$(node -p 'process.versions.node')
node -e '
  const [maj, min] = process.versions.node.split(".").map(Number);
  if (maj < 20 || (maj === 20 && min < 19)) process.exit(1);
' || fail "node $NODE_VERSION is too old (need >= 20.19)"
echo "node $NODE_VERSION, npm $(npm --version)"

section "Registry tools (docker-registry, skopeo, umoci, htpasswd, zstd)"
missing=()
for tool in docker-registry skopeo umoci htpasswd zstd; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing: ${missing[*]} - installing"
  apt_install docker-registry skopeo umoci apache2-utils zstd
fi
for tool in docker-registry skopeo umoci htpasswd zstd; do
  command -v "$tool" >/dev/null || fail "$tool still missing after apt-get install"
done
echo "skopeo: $(skopeo --version)"
echo "umoci:  $(umoci --version)"
echo "docker-registry: $(docker-registry --version 2>&1 | head -1)"

# skopeo refuses every copy without a trust policy. Debian ships it in golang-github-containers-common,
# a hard dependency of skopeo; the test harness also passes --insecure-policy, but check anyway.
if [ ! -f /etc/containers/policy.json ]; then
  echo "/etc/containers/policy.json missing - writing the default (accept anything; CI only talks to 127.0.0.1)"
  run_as_root mkdir -p /etc/containers
  printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' | run_as_root tee /etc/containers/policy.json >/dev/null
else
  echo "policy.json from: $(dpkg -S /etc/containers/policy.json 2>/dev/null || echo 'not a package file')"
fi

SMOKE=$(mktemp -d)
trap 'rm -rf "$SMOKE"' EXIT
umoci init --layout "$SMOKE/layout"
umoci new --image "$SMOKE/layout:smoke"
skopeo --tmpdir "$SMOKE" copy -q "oci:$SMOKE/layout:smoke" "dir:$SMOKE/copy" </dev/null \
  || fail "skopeo copy (with the system trust policy) does not work"
echo "umoci + skopeo copy smoke test: ok"

section "Headless browser (chromium: the HTML run report test renders the page)"
command -v chromium >/dev/null || apt_install chromium
command -v chromium >/dev/null || fail "chromium still missing after apt-get install"
printf '<!doctype html><p>smoke &amp; ok</p>' >"$SMOKE/page.html"
chromium --headless --no-sandbox --disable-gpu --dump-dom "file://$SMOKE/page.html" 2>/dev/null | grep -q 'smoke &amp; ok' \
  || fail "chromium --headless --dump-dom does not render a page"
echo "chromium: $(chromium --version 2>/dev/null | head -1), headless render: ok"

section "moto (S3 / ECR emulator)"
PY=${MOTO_PYTHON:-/root/.pyenv/versions/3.11.7/bin/python}
if [ ! -x "$PY" ]; then
  PY=/opt/ecr-backup-ci/venv/bin/python
  if [ ! -x "$PY" ]; then
    echo "no preinstalled python for moto - creating a venv (Debian's python3 is externally managed)"
    command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3 python3-venv
    python3 -m venv /opt/ecr-backup-ci/venv
  fi
fi
if ! "$PY" -c 'import moto.server' 2>/dev/null; then
  echo "moto not importable by $PY - installing ${MOTO_PIP_SPEC:-moto[server]==5.2.1}"
  "$PY" -m pip install -q "${MOTO_PIP_SPEC:-moto[server]==5.2.1}" </dev/null
fi
"$PY" -c 'import moto.server' || fail "moto still not importable by $PY"
echo "moto $("$PY" -c 'import moto; print(moto.__version__)') via $PY"

section "npm dependencies"
if [ "${CI:-}" = true ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund </dev/null
else
  echo "node_modules is up to date with package-lock.json"
fi

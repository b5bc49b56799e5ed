#!/usr/bin/env bash
# Installs the programs the interop and Autobahn harnesses talk to. Idempotent: everything
# lands under target/interop/ (ignored by git) and a second run only checks what is there.
#
#   bash scripts/install-peers.sh              # peers: Python websockets, Node ws, chromium, redis-server, tinyproxy
#   bash scripts/install-peers.sh autobahn     # Autobahn|Testsuite (wstest, Python 2.7)
#   bash scripts/install-peers.sh all          # both
#   bash scripts/install-peers.sh py node      # any subset of: py node chromium redis tinyproxy autobahn
#
# Python 2.7 for wstest: $PYTHON2 if set, else pyenv's 2.7.x, else python2.7 on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DIR="$ROOT/target/interop"
mkdir -p "$DIR"
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf 'install-peers: %s\n' "$*"; }
die() { printf 'install-peers: error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root (directly, or through sudo when that is available).
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $*"
  fi
}

install_py() {
  local venv="$DIR/py"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import websockets' 2>/dev/null; then
    say "found Python websockets $("$venv/bin/python" -c 'import websockets; print(websockets.__version__)') in $venv"
    return
  fi
  command -v python3 >/dev/null || die "python3 is missing"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check websockets
  say "installed Python websockets $("$venv/bin/python" -c 'import websockets; print(websockets.__version__)') into $venv"
}

install_node() {
  local prefix="$DIR/node"
  if [ -f "$prefix/node_modules/ws/package.json" ]; then
    say "found Node ws $(node -p "require('$prefix/node_modules/ws/package.json').version") in $prefix"
    return
  fi
  command -v node >/dev/null || die "node is missing"
  command -v npm >/dev/null || die "npm is missing"
  mkdir -p "$prefix"
  npm install --silent --no-audit --no-fund --prefix "$prefix" ws >/dev/null
  say "installed Node ws $(node -p "require('$prefix/node_modules/ws/package.json').version") into $prefix"
}

install_chromium() {
  if [ -x /usr/bin/chromium ]; then
    say "found $(/usr/bin/chromium --version 2>/dev/null || echo chromium) at /usr/bin/chromium"
    return
  fi
  command -v apt-get >/dev/null || die "/usr/bin/chromium is missing and apt-get is not available"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  [ -x /usr/bin/chromium ] || die "apt-get installed chromium but /usr/bin/chromium is missing"
  say "installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
}

# The chat's tests (chat/tests/nodes.rs) start their own redis-server on a free port; the
# package's service is not used.
install_redis() {
  if [ -x /usr/bin/redis-server ]; then
    say "found $(/usr/bin/redis-server --version 2>/dev/null | cut -d' ' -f1-3) at /usr/bin/redis-server"
    return
  fi
  command -v apt-get >/dev/null || die "/usr/bin/redis-server is missing and apt-get is not available"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  [ -x /usr/bin/redis-server ] || die "apt-get installed redis-server but /usr/bin/redis-server is missing"
  say "installed $(/usr/bin/redis-server --version 2>/dev/null | cut -d' ' -f1-3)"
}

# The proxy tests (adapters/tokio/tests/tinyproxy.rs) start their own tinyproxy with a
# generated configuration on a free port; the package's service is not used.
install_tinyproxy() {
  if [ -x /usr/bin/tinyproxy ]; then
    say "found $(/usr/bin/tinyproxy -v 2>/dev/null) at /usr/bin/tinyproxy"
    return
  fi
  command -v apt-get >/dev/null || die "/usr/bin/tinyproxy is missing and apt-get is not available"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tinyproxy >/dev/null
  [ -x /usr/bin/tinyproxy ] || die "apt-get installed tinyproxy but /usr/bin/tinyproxy is missing"
  say "installed $(/usr/bin/tinyproxy -v 2>/dev/null)"
}

find_python2() {
  if [ -n "${PYTHON2:-}" ]; then echo "$PYTHON2"; return; fi
  local roots=()
  if command -v pyenv >/dev/null 2>&1; then roots+=("$(pyenv root)"); fi
  roots+=("${PYENV_ROOT:-}" "$HOME/.pyenv" /root/.pyenv)
  local r p
  for r in "${roots[@]}"; do
    [ -n "$r" ] || continue
    for p in "$r"/versions/2.7*/bin/python2.7; do
      if [ -x "$p" ]; then echo "$p"; return; fi
    done
  done
  command -v python2.7 2>/dev/null || true
}

install_autobahn() {
  local venv="$DIR/wstest-venv"
  if [ -x "$venv/bin/wstest" ] && "$venv/bin/python" -c 'import autobahntestsuite' 2>/dev/null; then
    say "found wstest (autobahntestsuite $("$venv/bin/python" -c 'import autobahntestsuite; print(autobahntestsuite.__version__)')) in $venv"
    return
  fi
  local py2
  py2="$(find_python2)"
  [ -n "$py2" ] && [ -x "$py2" ] || die "wstest needs CPython 2.7, which was not found: set PYTHON2=/path/to/python2.7 (looked in \$PYENV_ROOT, ~/.pyenv/versions/2.7*/bin and PATH)"
  local vpkg="$DIR/virtualenv-pkg"
  if ! PYTHONPATH="$vpkg" python3 -c 'import virtualenv' 2>/dev/null; then
    rm -rf "$vpkg"
    python3 -m pip install --quiet --disable-pip-version-check --target "$vpkg" 'virtualenv==20.21.1'
  fi
  rm -rf "$venv"
  PYTHONPATH="$vpkg" python3 -m virtualenv --quiet -p "$py2" "$venv"
  say "installing autobahntestsuite into $venv (about 2 minutes)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-python-version-warning \
    'autobahntestsuite==25.10.1' 2>&1 | grep -v -i 'DEPRECATION' || true
  "$venv/bin/python" -c 'import autobahntestsuite' 2>/dev/null && [ -x "$venv/bin/wstest" ] \
    || die "autobahntestsuite did not install into $venv"
  say "installed wstest (autobahntestsuite $("$venv/bin/python" -c 'import autobahntestsuite; print(autobahntestsuite.__version__)')) into $venv"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(peers)
for t in "${targets[@]}"; do
  case "$t" in
    peers) install_py; install_node; install_chromium; install_redis; install_tinyproxy ;;
    all) install_py; install_node; install_chromium; install_redis; install_tinyproxy; install_autobahn ;;
    py|python) install_py ;;
    node) install_node ;;
    chromium) install_chromium ;;
    redis) install_redis ;;
    tinyproxy) install_tinyproxy ;;
    autobahn|wstest) install_autobahn ;;
    *) die "unknown target '$t' (expected: peers all py node chromium redis tinyproxy autobahn)" ;;
  esac
done

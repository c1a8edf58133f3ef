#!/usr/bin/env bash
# Create the project's virtual environment and install postsieve into it (editable, with test
# extras). Used by `./run serve` and `./run test` (and the Makefile); safe to run again (it only reinstalls when
# pyproject.toml changed). On a bare Debian/Ubuntu machine whose Python lacks the venv module, it
# installs python3-venv with apt-get (as root, or through sudo) and says so.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
STAMP="$VENV/.installed"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "bootstrap: $PYTHON not found; install Python 3.11 or newer" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "bootstrap: postsieve needs Python 3.11 or newer, $PYTHON is $("$PYTHON" -V 2>&1)" >&2
  exit 1
fi
if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ] && [ -x "$VENV/bin/postsieve" ]; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    echo "bootstrap: '$PYTHON -m venv' failed; installing the venv package with apt-get" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    ver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "python${ver}-venv" || $SUDO apt-get install -y -qq python3-venv
    "$PYTHON" -m venv "$VENV"
  fi
fi
echo "bootstrap: installing postsieve and its dependencies into $VENV" >&2
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[test]'
touch "$STAMP"

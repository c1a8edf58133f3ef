#!/usr/bin/env bash
# Create the project's virtual environment and install postsieve into it (editable, with test
# extras). Used by `./run serve` and `./run test` (and the Makefile); safe to run again (it only reinstalls when
# pyproject.toml, setup.py or classifier/_fastcount.c changed). On a bare Debian/Ubuntu machine whose Python lacks the venv module, it
# installs python3-venv with apt-get (as root, or through sudo) and says so.
#
# `bootstrap.sh test` (what `./run test` runs) also makes sure a headless Chromium is there: the
# browser test of the training report (tests/test_report_browser.py) screenshots it. Missing, it
# is installed with apt-get as root or with password-less sudo; where that is impossible the
# script says so and goes on, and that one test is skipped with the reason.
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
has_chromium() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || command -v google-chrome >/dev/null 2>&1 || command -v google-chrome-stable >/dev/null 2>&1
}
if [ "${1:-}" = test ] && ! has_chromium; then
  AS_ROOT=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then AS_ROOT="sudo -n"; else AS_ROOT=none; fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: no Chromium and no apt-get: the report's browser test will be skipped" >&2
  elif [ "$AS_ROOT" = none ]; then
    echo "bootstrap: no Chromium, and installing it needs root (run 'sudo apt-get install chromium');" \
         "the report's browser test will be skipped" >&2
  else
    echo "bootstrap: installing chromium with apt-get (the report's browser test screenshots the page)" >&2
    if ! { $AS_ROOT apt-get update -qq && $AS_ROOT env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
      echo "bootstrap: apt-get could not install chromium; the report's browser test will be skipped" >&2
    fi
  fi
fi
# The compiled scoring step is built by the install, so a changed C source reinstalls too.
if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ] && [ "$STAMP" -nt setup.py ] && [ "$STAMP" -nt classifier/_fastcount.c ] \
   && [ -x "$VENV/bin/postsieve" ]; then
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
# The editable install builds the compiled step next to its source. An earlier build is removed
# first: when the C source no longer compiles, the old module would otherwise still import, and
# the tests would run yesterday's C code.
rm -f classifier/_fastcount.*.so classifier/_fastcount.*.pyd
"$VENV/bin/python" -m pip install --quiet -e '.[test]'
# pip --quiet hides setuptools' note when the optional C extension could not be built: say it here.
if "$VENV/bin/python" -c 'import classifier._fastcount' 2>/dev/null; then
  echo "bootstrap: the compiled scoring step (classifier/_fastcount.c) is built" >&2
else
  echo "bootstrap: the compiled scoring step could not be built (no C compiler, no Python headers, or" \
       "an error in classifier/_fastcount.c), so scoring uses its numpy path (the same results, slower);" \
       "run '$VENV/bin/pip install -e .' to see why" >&2
fi
touch "$STAMP"

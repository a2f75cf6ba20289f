#!/usr/bin/env bash
# Set up .venv with Python >= 3.12 and run the main job or the tests.
#   bash scripts/dev.sh run  [bayesmoe run options]   # install bayesmoe, run the default job
#   bash scripts/dev.sh test [pytest options]         # install bayesmoe[test], lint, run pytest
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
case "$mode" in
  run|test) shift ;;
  *) echo "usage: bash scripts/dev.sh run|test [options]" >&2; exit 2 ;;
esac

is_py312() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }

find_python() {
  local root="${PYENV_ROOT:-$HOME/.pyenv}" cand
  for cand in ${PYTHON:-} "$root"/versions/3.12*/bin/python3.12 "$root"/versions/3.13*/bin/python3.13 \
              "$(command -v python3.12 || true)" "$(command -v python3.13 || true)" \
              "$(command -v python3 || true)"; do
    if [ -n "$cand" ] && [ -x "$cand" ] && is_py312 "$cand"; then echo "$cand"; return 0; fi
  done
  return 1
}

pip_install() {  # quiet pip: its output is shown only when it fails
  local log rc=0
  log="$(mktemp)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    grep -v '^WARNING: Location' "$log" >&2 || true
    echo "error: 'pip install $*' failed (exit $rc)" >&2
  fi
  rm -f "$log"
  return "$rc"
}

if [ ! -x .venv/bin/python ] || ! is_py312 .venv/bin/python; then
  py="$(find_python)" || {
    echo "error: bayesmoe needs Python >= 3.12 (PyMC 6 / ArviZ 1.x); none found. Install one" \
         "(e.g. 'pyenv install 3.12') or set PYTHON=/path/to/python3.12." >&2
    exit 1
  }
  echo "creating .venv with $py"
  rm -rf .venv
  "$py" -m venv .venv
fi

extra=""
[ "$mode" = test ] && extra="[test]"
echo "installing bayesmoe${extra} into .venv"
pip_install --upgrade pip
pip_install -e ".${extra}"

if [ "$mode" = run ]; then
  exec .venv/bin/bayesmoe run "$@"
fi
# House rules first (seconds): lint and format under the committed ruff configuration.
.venv/bin/ruff check --quiet . || { echo "error: 'ruff check' failed (fix, or 'ruff check --fix')" >&2; exit 1; }
.venv/bin/ruff format --check --quiet . || { echo "error: 'ruff format --check' failed (run 'ruff format')" >&2; exit 1; }
# Every core by default (one test file per worker: module fixtures are built once); pass -n 0 (or
# any -n/--numprocesses) to choose.
parallel=(-n auto --dist loadfile)
for a in "$@"; do
  case "$a" in -n|-n*|--numprocesses*) parallel=() ;; esac
done
exec .venv/bin/python -m pytest "${parallel[@]}" "$@"

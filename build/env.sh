# Sourced by the build/ scripts.  Finds Python >= 3.11 and installs the
# project (with the extras named in $1) into the active virtualenv, or into
# .venv at the repository root, created on first use and reused after.
# Reinstalls only when setup.cfg or pyproject.toml change.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

find_python() {
  local candidate
  for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "olivia: need Python 3.11 or newer on PATH (or set PYTHON=/path/to/python3)" >&2
  return 1
}

ensure_env() {
  local extras=${1:-}
  local venv
  if [ -n "${VIRTUAL_ENV:-}" ]; then
    venv=$VIRTUAL_ENV
  else
    venv=$ROOT/.venv
    if [ ! -x "$venv/bin/python" ]; then
      local python
      python=$(find_python)
      echo "olivia: creating virtualenv $venv" >&2
      "$python" -m venv "$venv"
    fi
  fi
  PY=$venv/bin/python
  local stamp
  stamp="$venv/.olivia-installed${extras:+-$extras}"
  local want
  want=$(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | cksum)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "olivia: installing olivia${extras:+[$extras]} into $venv" >&2
    local log="$venv/pip-install.log"
    # pip's output is kept out of the way, and shown only if it fails.
    if ! { "$PY" -m pip install --disable-pip-version-check --upgrade pip &&
           "$PY" -m pip install --disable-pip-version-check -e "$ROOT${extras:+[$extras]}"; } \
         >"$log" 2>&1; then
      cat "$log" >&2
      echo "olivia: installing failed (log above, also in $log)" >&2
      return 1
    fi
    echo "$want" > "$stamp"
  fi
}

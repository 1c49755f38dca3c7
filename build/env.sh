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

# Two first runs at once (a cluster started from a fresh clone) would build
# one virtualenv and install into it twice over, and break it: whoever comes
# second waits for the first.  flock where it exists (util-linux), else a
# directory made atomically, with its owner's PID so a dead owner's lock is
# taken over.
lock_install() {
  local lock=$1
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$lock"
    if ! flock -n 9; then
      echo "olivia: waiting for another build/ script to finish installing" >&2
      flock 9
    fi
    return 0
  fi
  local waited=0
  until mkdir "$lock.d" 2>/dev/null; do
    local owner
    owner=$(cat "$lock.d/pid" 2>/dev/null || true)
    if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
      rm -rf "$lock.d"  # its owner died mid-install
      continue
    fi
    [ $waited = 0 ] && echo "olivia: waiting for another build/ script to finish installing" >&2
    waited=1
    sleep 0.2  # a lock, not a test: poll until the other install ends
  done
  echo $$ > "$lock.d/pid"
  trap 'rm -rf "'"$lock"'.d"' EXIT
}

unlock_install() {
  if command -v flock >/dev/null 2>&1; then
    exec 9>&-
  else
    rm -rf "$1.d"
    trap - EXIT
  fi
}

ensure_env() {
  local extras=${1:-}
  local venv lock
  if [ -n "${VIRTUAL_ENV:-}" ]; then
    venv=$VIRTUAL_ENV
    lock=$venv/.olivia-install.lock
  else
    venv=$ROOT/.venv
    lock=$ROOT/.olivia-install.lock
  fi
  lock_install "$lock"
  if [ -z "${VIRTUAL_ENV:-}" ] && [ ! -x "$venv/bin/python" ]; then
    local python
    python=$(find_python)
    echo "olivia: creating virtualenv $venv" >&2
    "$python" -m venv "$venv"
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
      unlock_install "$lock"
      return 1
    fi
    echo "$want" > "$stamp"
  fi
  unlock_install "$lock"
}

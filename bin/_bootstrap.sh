# Sourced by bin/lavasparse and bin/test: make .venv with a Python 3.10 and the
# project installed in it. Quick when that is already done (a stamp holds the
# hash of pyproject.toml). lava-nc 0.10.0 imports only on Python 3.10.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.lavasparse-installed"

find_python310() {
  local c
  for c in python3.10 "$(command -v pyenv >/dev/null 2>&1 && echo "$(pyenv root)/versions/"3.10*/bin/python3.10)" \
           "$HOME/.pyenv/versions/"3.10*/bin/python3.10; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  if command -v uv >/dev/null 2>&1; then
    uv python install 3.10 >&2 && uv python find 3.10 && return 0
  fi
  return 1
}

want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  PY="$(find_python310)" || { echo "lavasparse needs Python 3.10 (lava-nc 0.10.0 imports only there): install it with pyenv or uv" >&2; exit 1; }
  echo "[setup] creating $VENV with $PY and installing lavasparse (about 2 minutes, 6.3 GB the first time)" >&2
  # torch 2.3's wheels from PyPI bring 2.8 GB of CUDA libraries (lava-dl pins
  # torch 2.3.x; PyPI has no CPU build of it), and pip unpacks its downloads
  # beside the install: say so before pip fails half-way with "No space left".
  free_kb="$(df -Pk "$(dirname "$VENV")" | awk 'NR==2 {print $4}')"
  if [ -n "$free_kb" ] && [ "$free_kb" -lt $((9 * 1024 * 1024)) ]; then
    echo "[setup] warning: $((free_kb / 1024)) MB free on $(dirname "$VENV"); the install needs about 9 GB at its peak" >&2
  fi
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  log="$VENV/install.log"
  if ! { "$VENV/bin/python" -m pip install --upgrade pip && "$VENV/bin/python" -m pip install -e "$ROOT[test]"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "[setup] installing failed; the whole log is in $log" >&2
    exit 1
  fi
  echo "$want" > "$STAMP"
  echo "[setup] done" >&2
fi

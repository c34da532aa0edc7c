#!/usr/bin/env bash
# Creates (or reuses) the project's virtualenv and links it as .venv.
#
# The virtualenv lives outside the clone, in $CATS_DOGS_VENV_CACHE (default ~/.cache/cats-dogs-tfx),
# keyed by a hash of the lock files, so a re-run or a fresh clone with the same pins is fast.
#   scripts/setup.sh            # base install (pipeline, tests)
#   scripts/setup.sh airflow    # plus Apache Airflow (requirements-airflow.lock): .venv-airflow
#   scripts/setup.sh kfp        # the kfp 2.x SDK alone (requirements-kfp.lock): .venv-kfp
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
extra=${1:-}
cache=${CATS_DOGS_VENV_CACHE:-$HOME/.cache/cats-dogs-tfx}

find_python310() {
  local candidate
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"; return; fi
  for candidate in python3.10 \
      "$(command -v pyenv >/dev/null 2>&1 && pyenv root)"/versions/3.10.*/bin/python3.10 \
      "$HOME"/.pyenv/versions/3.10.*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do
    if [[ -n "$candidate" ]] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' \
        >/dev/null 2>&1; then
      command -v "$candidate" || echo "$candidate"
      return
    fi
  done
  echo "error: Python 3.10 not found (TFX 1.16 needs Python 3.10). Install it, e.g." \
       "'pyenv install 3.10', or point PYTHON=/path/to/python3.10 at one." >&2
  exit 1
}

locks=("$repo/requirements.lock")
venv_tag=base
link=.venv
if [[ "$extra" == airflow ]]; then
  locks+=("$repo/requirements-airflow.lock")
  venv_tag=airflow
  link=.venv-airflow
elif [[ "$extra" == kfp ]]; then
  # Not on top of the base pins: kfp 2.x needs protobuf 4+, which TFX 1.16 cannot load.
  locks=("$repo/requirements-kfp.lock")
  venv_tag=kfp
  link=.venv-kfp
elif [[ -n "$extra" ]]; then
  echo "error: unknown extra '$extra' (known: airflow, kfp)" >&2
  exit 2
fi

python=$(find_python310)
key=$(cat "${locks[@]}" | { sha256sum 2>/dev/null || shasum -a 256; } | cut -c1-16)
venv="$cache/venv-py310-$venv_tag-$key"

if [[ ! -f "$venv/.complete" ]]; then
  # Built in place (a venv hard-codes its path); .complete marks a finished install.
  echo "creating $venv (first time for these pins: a few minutes)"
  mkdir -p "$cache"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade 'pip==26.3'
  # One lock after the other: requirements-airflow.lock replaces a few of the base pins.
  for lock in "${locks[@]}"; do
    "$venv/bin/python" -m pip install --quiet --no-deps -r "$lock"
  done
  "$venv/bin/python" -m pip check
  touch "$venv/.complete"
fi

# The project itself: editable, so the clone's code is what runs (Beam workers import it too).
# The kfp SDK's virtualenv only reads compiled specs and does not import the project.
if [[ "$extra" != kfp ]]; then
  "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$repo"
fi
ln -sfn "$venv" "$repo/$link"
echo "ready: $repo/$link -> $venv"

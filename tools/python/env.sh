#!/usr/bin/env bash
# Prepares the pinned Python environment of the interop tests and prints the
# path of its python (for MLBUILD_PYTHON). The environment is cached under
# ${MLBUILD_PYENV_CACHE:-~/.cache/mlbuild/pyenv}/<hash of this script and
# requirements.txt>, so an unchanged pin is prepared once per machine; a
# folder left half-built by an interrupted run (no .complete marker) is
# rebuilt. Needs root for apt-get where python3-torch is not installed.
# Progress goes to stderr, the path alone to stdout:
#
#   export MLBUILD_PYTHON=$(tools/python/env.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# Debian bookworm's CPU build of torch; see requirements.txt for why.
torch_deb=1.13.1+dfsg-4
key=$(cat "$here/env.sh" "$here/requirements.txt" | sha256sum | cut -c1-16)
venv=${MLBUILD_PYENV_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/mlbuild/pyenv}/$key
if [ -f "$venv/.complete" ] && [ -x "$venv/bin/python" ]; then
  echo "$venv/bin/python"
  exit 0
fi
if [ "$(dpkg-query -W -f='${Version}' python3-torch 2>/dev/null || true)" != "$torch_deb" ]; then
  echo "env.sh: installing Debian's python3-torch $torch_deb" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "python3-torch=$torch_deb" python3-venv >&2
fi
echo "env.sh: creating $venv" >&2
rm -rf "$venv"
/usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r "$here/requirements.txt" >&2
# Fail here, not in the tests, if the environment does not import.
"$venv/bin/python" -c 'import torch, transformers, peft, safetensors, tokenizers' >&2
touch "$venv/.complete"
echo "$venv/bin/python"

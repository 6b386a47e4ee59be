#!/bin/sh
# Create bench/reference/.venv with the reference implementations
# (flowchronicle, tadam-learner) pinned in requirements.txt.  They live only
# here, never in the project's own environment.  Safe to run again: an
# existing, complete venv is left as it is.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
python=${PYTHON:-python3}

if [ -f "$venv/.installed" ] && [ "$venv/.installed" -nt "$here/requirements.txt" ]; then
    echo "reference venv up to date: $venv"
    exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
# --no-deps: requirements.txt lists the whole closure (it leaves out torch)
"$venv/bin/pip" install -q --no-deps -r "$here/requirements.txt"
# the one broken requirement pip check may report is pgmpy's torch
problems=$("$venv/bin/pip" check 2>&1 | grep -v "pgmpy 0.1.23 requires torch" || true)
case "$problems" in
    ""|"No broken requirements found.") ;;
    *) echo "$problems" >&2; exit 1 ;;
esac
"$venv/bin/python" -c "import flowchronicle.search, tadam, pgmpy.models"
touch "$venv/.installed"
echo "reference venv ready: $venv"

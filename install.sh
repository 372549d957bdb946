#!/usr/bin/env bash
# Install Forewarn and everything it needs on this machine: the Python package (editable) with its test and lint
# tools, and the assets of the web page, the offline situation export and the API docs page: the Natural Earth
# basemap (public domain, converted to GeoJSON), the Leaflet map library (BSD-2-Clause) and Swagger UI
# (Apache-2.0), all from the npm registry, copied into the package. Nothing is fetched at run time.
#
# Needs Python 3.11+ (run it inside a virtual environment: python3 -m venv .venv && . .venv/bin/activate) and
# Node.js 20+ with npm. Set PYTHON to choose the interpreter (default: python, else python3).
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

PYTHON="${PYTHON:-$(command -v python || command -v python3 || true)}"
[[ -n "$PYTHON" ]] || die "no python or python3 on PATH: install Python 3.11+"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$PYTHON" -V 2>&1) is too old: Forewarn needs Python 3.11+"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
  echo "note: not inside a virtual environment; installing into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
fi
command -v npm >/dev/null || die "npm not found: install Node.js 20+ with npm"

step "Python package and its test tools ($("$PYTHON" -V 2>&1)): pip install -e '.[dev]' (a minute or two)"
"$PYTHON" -m pip install -e '.[dev]'

step "web assets from npm (Node.js $(node --version)): npm ci"
npm ci --no-audit --no-fund --loglevel=error

step "offline basemap (Natural Earth), map library (Leaflet) and API docs assets (Swagger UI)"
npm run --silent assets


#!/usr/bin/env bash
# Install Forewarn and everything it needs on this machine: the Python package (editable) with its test and lint
# tools, and the offline basemap of the web page (Natural Earth, public domain, from the npm registry, converted
# to GeoJSON inside the package). Needs Python 3.11+ with pip, and Node.js with npm. Nothing is fetched at run time.
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install -q -e '.[dev]'
npm ci --no-audit --no-fund --loglevel=error
npm run --silent basemap

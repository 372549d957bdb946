#!/usr/bin/env bash
# Install Forewarn and everything it needs on this machine: the Python package (editable) with its test and lint
# tools, and the map assets of the web page and of the offline situation export (the Natural Earth basemap, public
# domain, converted to GeoJSON, and the Leaflet map library, BSD-2-Clause; both from the npm registry, copied
# inside the package). Needs Python 3.11+ with pip, and Node.js with npm. Nothing is fetched at run time.
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install -q -e '.[dev]'
npm ci --no-audit --no-fund --loglevel=error
npm run --silent assets

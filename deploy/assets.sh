#!/usr/bin/env bash
# The pages' third-party browser files (package.json, pinned in package-lock.json): `npm ci` into node_modules/,
# then copy the built files the box serves into daemon/api/static/vendor/ (gitignored; the wheel ships them).
# Called by `make assets` and by deploy/install.sh when it builds the wheel from a checkout.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$SRC/daemon/api/static/vendor
command -v npm >/dev/null || { echo "assets.sh: npm is missing: apt-get install nodejs npm (or give install.sh a built --wheel)" >&2; exit 1; }
cd "$SRC"
npm ci --no-audit --no-fund --ignore-scripts --silent
mkdir -p "$OUT"
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css "$OUT/"
cp node_modules/uplot/LICENSE "$OUT/uPlot.LICENSE"
touch "$OUT/.built"

#!/usr/bin/env bash
# `npm run bench`: like `npm test`, runs inside a virtual X server when there is no display,
# so GPU.js's headlessgl mode is measured too.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null; then
  exec xvfb-run -a -s '-screen 0 1024x768x24' node --import tsx bench/run.ts "$@"
fi
exec node --import tsx bench/run.ts "$@"

#!/usr/bin/env bash
# `npm test`: type-check, the layering rules (.dependency-cruiser.cjs: no import cycles, src/
# below backends/ below cli/), then vitest. GPU.js headlessgl needs an X display: without one,
# and with xvfb-run installed, the suite runs inside a virtual X server.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc --noEmit -p .
npx depcruise src backends cli bin bench test --config .dependency-cruiser.cjs --output-type err
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null; then
  exec xvfb-run -a -s '-screen 0 1024x768x24' npx vitest run "$@"
fi
exec npx vitest run "$@"

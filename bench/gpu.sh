#!/usr/bin/env bash
# bench/gpu.sh: the GPU-scale checks on a machine with an NVIDIA GPU, every figure in one JSON
# file: the environment (node, Vulkan loader, the NVIDIA ICD, Dawn's adapter), the WebGPU parity
# suite, the TokenFormer-150M training-step bench (bench/train150m.ts: official shapes, T 2048,
# the largest batch that fits, tokens/s, live-tensor peak against the estimate, and nvidia-smi's
# device peak), the small-config bench (npm run bench) and `tokenformer scaling --preset gpu`.
# Omits: installing anything from the network (the GPU machine may have none; see "carry-in").
#
#   bench/gpu.sh [--out FILE.json] [--only parity,train150m,bench,scaling] [--dry-run]
#
# --dry-run runs every step that needs no GPU, on the CPU at toy sizes (tiny train150m shape,
# tiny scaling run), records the GPU-only steps as skipped, and writes the same JSON layout:
# test/scaling-gpu.test.ts runs it.
#
# Carry-in, for a machine that lacks pieces (the caller copies them next to the repo, into
# $TOKENFORMER_CARRY, default ../carry beside the repo root):
#   carry/node/bin/node     a Node ≥ 20 binary (e.g. `cp "$(command -v node)"` from a dev machine)
#   carry/lib/              libvulkan.so.1 (the Vulkan loader; Debian: libvulkan1) and anything
#                           it needs; put on LD_LIBRARY_PATH. The NVIDIA driver's own libraries
#                           (libEGL_nvidia.so.0 …) come with the driver, not from here.
#   node_modules/           npm ci'd on a machine of the same OS/arch and copied with the repo.
# Headless NVIDIA containers: the GLX ICD may refuse to create a Vulkan instance without a
# display; unless VK_ICD_FILENAMES is set, this script writes an ICD manifest naming
# libEGL_nvidia.so.0 and points VK_ICD_FILENAMES at it (spec/backends/webgpu.md).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

OUT=out/gpu.json
ONLY=parity,train150m,bench,scaling
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    *) echo "error: unknown argument $1 (--out FILE, --only LIST, --dry-run)" >&2; exit 2 ;;
  esac
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$WORK/xdg}"
mkdir -p "$XDG_RUNTIME_DIR" "$(dirname "$OUT")"
CARRY=${TOKENFORMER_CARRY:-$ROOT/../carry}
STEPS="$WORK/steps"
mkdir -p "$STEPS"

# A step's result: steps/NAME.json = {"status": …, "seconds": …, "result": <json or null>, "error": …}
record() { # name status seconds result-file error
  local res=null
  [ -n "$4" ] && [ -s "$4" ] && res=$(cat "$4")
  printf '{"status":"%s","seconds":%s,"result":%s,"error":%s}\n' "$2" "$3" "$res" \
    "$(printf '%s' "$5" | tail -c 600 | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.stringify(s)))')" > "$STEPS/$1.json"
}
skip() { printf '{"status":"skipped","reason":"%s"}\n' "$2" > "$STEPS/$1.json"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# --- environment ---------------------------------------------------------------------------
NODE=$(command -v node || true)
[ -x "$CARRY/node/bin/node" ] && [ -z "$NODE" ] && NODE="$CARRY/node/bin/node"
if [ -z "$NODE" ]; then echo "error: no node on PATH and none at $CARRY/node/bin/node" >&2; exit 2; fi
export PATH="$(dirname "$NODE"):$PATH"
NODE_MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]')
if [ "$NODE_MAJOR" -lt 20 ]; then echo "error: node $("$NODE" --version) found, 20 or later needed" >&2; exit 2; fi
[ -d "$CARRY/lib" ] && export LD_LIBRARY_PATH="$CARRY/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
has_lib() { ldconfig -p 2>/dev/null | grep -q "$1" || { [ -n "${LD_LIBRARY_PATH:-}" ] && ls ${LD_LIBRARY_PATH//:/ } 2>/dev/null | grep -q "$1"; }; }
VULKAN=no; has_lib libvulkan.so.1 && VULKAN=yes
GPU_NAME=""; GPU_MEM_MIB=0; DRIVER=""
if [ "$DRY" = 0 ] && command -v nvidia-smi >/dev/null; then
  IFS=',' read -r GPU_NAME GPU_MEM_MIB DRIVER < <(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits | head -n 1)
  GPU_NAME=$(echo "$GPU_NAME" | xargs); GPU_MEM_MIB=$(echo "$GPU_MEM_MIB" | xargs); DRIVER=$(echo "$DRIVER" | xargs)
fi
ICD_NOTE="VK_ICD_FILENAMES as given"
if [ -n "$GPU_NAME" ] && [ -z "${VK_ICD_FILENAMES:-}" ]; then
  if has_lib libEGL_nvidia.so.0; then
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"libEGL_nvidia.so.0","api_version":"1.3.0"}}\n' > "$WORK/nvidia_egl_icd.json"
    export VK_ICD_FILENAMES="$WORK/nvidia_egl_icd.json"
    ICD_NOTE="wrote an EGL ICD manifest (libEGL_nvidia.so.0)"
  else
    ICD_NOTE="libEGL_nvidia.so.0 not found: the system ICDs are used"
  fi
fi
BACKEND=webgpu
ADAPTER=$("$NODE" --import tsx bench/train150m.ts --probe --backend "$BACKEND" 2>/dev/null | tail -n 1)
[ -n "$ADAPTER" ] || ADAPTER='{"backend":null,"adapter":null}'
if [ "$DRY" = 0 ]; then
  if [ -z "$GPU_NAME" ]; then echo "error: no NVIDIA GPU (nvidia-smi); use --dry-run for the CPU path" >&2; exit 2; fi
  if ! echo "$ADAPTER" | grep -qi 'nvidia'; then echo "error: Dawn's adapter is not the NVIDIA GPU: $ADAPTER ($ICD_NOTE)" >&2; exit 2; fi
fi
cat > "$STEPS/env.json" <<EOF
{"dryRun":$([ "$DRY" = 1 ] && echo true || echo false),"node":"$("$NODE" --version)","vulkanLoader":"$VULKAN","gpu":"$GPU_NAME","gpuMemoryMiB":${GPU_MEM_MIB:-0},"driver":"$DRIVER","icd":"$ICD_NOTE","vkIcdFilenames":"${VK_ICD_FILENAMES:-}","webgpu":$ADAPTER,"cpus":$(nproc),"host":"$(uname -srm)"}
EOF

# nvidia-smi's memory.used, sampled every 200 ms while a command runs: prints the peak in MiB.
with_mem_peak() { # outfile cmd...
  local log="$WORK/mem.log" pid=""
  if [ "$DRY" = 0 ]; then nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$log" & pid=$!; fi
  "${@:2}"; local rc=$?
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; sort -n "$log" | tail -n 1 > "$1"; else echo null > "$1"; fi
  return $rc
}

# --- steps ---------------------------------------------------------------------------------
FAILED=0
run_step() { # name result-file cmd...
  local name=$1 res=$2 t0; shift 2; t0=$(now)
  echo "== $name: $*" >&2
  if "$@" > "$WORK/$name.log" 2>&1; then record "$name" ok "$(elapsed "$t0")" "$res" ""
  else record "$name" failed "$(elapsed "$t0")" "$res" "$(tail -n 20 "$WORK/$name.log")"; FAILED=1; fi
}

if want parity; then
  if [ "$DRY" = 1 ]; then skip parity "dry run: the WebGPU parity suite needs the GPU (npx vitest run test/parity/webgpu.test.ts)"
  else run_step parity "$WORK/parity.json" npx vitest run test/parity/webgpu.test.ts --reporter=json --outputFile="$WORK/parity.json"; fi
fi
if want train150m; then
  if [ "$DRY" = 1 ]; then
    run_step train150m "$WORK/t150.json" "$NODE" --import tsx bench/train150m.ts --tiny --backend cpu --batches 1,2 --steps 1 --out "$WORK/t150.json"
  else
    LIMIT=$(awk -v m="$GPU_MEM_MIB" 'BEGIN{printf "%d", m*1048576*0.92}')
    run_step train150m "$WORK/t150.json" with_mem_peak "$WORK/t150.peak" "$NODE" --import tsx bench/train150m.ts --backend "$BACKEND" --seq 2048 --memory-limit "$LIMIT" --out "$WORK/t150.json"
    [ -s "$WORK/t150.json" ] && "$NODE" -e 'const f=require("fs");const r=JSON.parse(f.readFileSync(process.argv[1]));r.nvidiaSmiPeakMiB=JSON.parse(f.readFileSync(process.argv[2],"utf8").trim()||"null");f.writeFileSync(process.argv[1],JSON.stringify(r))' "$WORK/t150.json" "$WORK/t150.peak"
  fi
fi
if want bench; then
  if [ "$DRY" = 1 ]; then skip bench "dry run: npm run bench takes minutes on a CPU"
  else run_step bench "$ROOT/out/bench.json" bash bench/run.sh; fi
fi
if want scaling; then
  if [ "$DRY" = 1 ]; then
    run_step scaling "$WORK/scaling/report.json" "$NODE" bin/tokenformer.mjs scaling --backend cpu --out "$WORK/scaling" --layers 1 --hidden 16 --heads 2 \
      --sizes 4/4/8,8/8/16,16/16/32 --steps 4 --fraction 0.5 --batch 2 --seq 16 --eval-every 2 --eval-windows 2 --variants zero,random
  else
    run_step scaling "$WORK/scaling/report.json" "$NODE" bin/tokenformer.mjs scaling --preset gpu --backend "$BACKEND" --out "$WORK/scaling"
    rm -rf "$ROOT/out/scaling-gpu" && cp -r "$WORK/scaling" "$ROOT/out/scaling-gpu" 2>/dev/null # the figures and report.md
  fi
fi

# --- one JSON ------------------------------------------------------------------------------
"$NODE" -e '
const fs = require("fs"), path = require("path");
const dir = process.argv[1], out = {};
for (const f of fs.readdirSync(dir).sort()) out[path.basename(f, ".json")] = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
if (out.scaling && out.scaling.result) { const r = out.scaling.result; out.scaling.result = { headline: r.headline, protocol: r.protocol, variants: r.variants, wallSeconds: r.wallSeconds, backend: r.backend, tokenizer: r.tokenizer }; }
if (out.parity && out.parity.result) { const r = out.parity.result; out.parity.result = { passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests, total: r.numTotalTests }; }
out.writtenAt = new Date().toISOString();
fs.writeFileSync(process.argv[2], JSON.stringify(out, null, 1) + "\n");
' "$STEPS" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo "wrote $OUT" >&2
exit $FAILED

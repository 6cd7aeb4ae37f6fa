#!/usr/bin/env bash
# The performance table: stylize-tool bench and PyTorch (tools/bench/torch_reference.py) on
# the same random-weight folders of the real architectures, same batch, size and threads,
# one after the other in this run, plus the embedded model through gst-launch.
#
#   tools/bench/compare.sh [--repeats N]
#
# Developer-only: PyTorch comes from the tools venv (PYTHON=.venv-tools/bin/python; see
# tools/fixtures/requirements.txt). Needs `swift build -c release` first. Model folders are
# written once under $BENCH_MODELS (default out/bench-models; SD 1.5 + Qwen3-VL-2B ≈ 12 GB).
# THREADS (default: all cores) applies to both sides.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPEATS=3
[ "${1:-}" = "--repeats" ] && REPEATS=$2
PY=${PYTHON:-.venv-tools/bin/python}
TOOL=.build/release/stylize-tool
THREADS=${THREADS:-$(nproc)}
M=${BENCH_MODELS:-out/bench-models}
[ -x "$TOOL" ] || { echo "compare.sh: $TOOL missing: swift build -c release" >&2; exit 1; }
"$PY" -c "import torch, diffusers, transformers" 2>/dev/null \
    || { echo "compare.sh: $PY lacks torch/diffusers/transformers (python3 -m venv .venv-tools; pip install -r tools/fixtures/requirements.txt)" >&2; exit 1; }

mkdir -p "$M"
folder() {  # folder NAME: random weights for tools/configs/NAME
    if [ ! -f "$M/$1/config.json" ]; then
        "$TOOL" init-random --config "tools/configs/$1/config.json" --out "$M/$1" >/dev/null
        [ -f "tools/configs/$1/preprocessor_config.json" ] && cp "tools/configs/$1/preprocessor_config.json" "$M/$1/"
    fi
    echo "$M/$1"
}
field() { sed -nE "s#^$1 +([0-9.]+).*#\1#p" | head -1; }   # first number after a label

rows=()
row() {  # row LABEL TARGET_SPEEDUP TARGET_PEAK -- bench arguments
    local label=$1 tspeed=$2 tpeak=$3; shift 4
    local ours theirs
    ours=$("$TOOL" bench "$@" --threads "$THREADS" --repeats "$REPEATS")
    theirs=$("$PY" tools/bench/torch_reference.py "$@" --threads "$THREADS" --repeats "$REPEATS" 2>/dev/null)
    local t_ours t_torch peak
    t_ours=$(field "time/call" <<<"$ours")
    t_torch=$(field "time/call" <<<"$theirs")
    peak=$(sed -nE 's/^ratio +([0-9.]+)%.*/\1/p' <<<"$ours")
    rows+=("$(printf '| %s | %.3f s | %.3f s | %.2f× (≥ %s) | %s %% (≥ %s %%) |' "$label" "$t_ours" "$t_torch" \
        "$(awk "BEGIN{print $t_torch/$t_ours}")" "$tspeed" "$peak" "$tpeak")")
    echo "${rows[-1]}" >&2
}

unet=$(folder sd15-unet); taesd=$(folder taesd); qwen=$(folder qwen3-vl-2b)
row "SD1.5 U-Net, 256², batch 4" 1.5 100 -- unet --model "$unet" --batch 4 --size 256x256
row "TAESD encode, 256², batch 4" 2 80 -- vae-encode --model "$taesd" --batch 4 --size 256x256
row "TAESD decode, 256², batch 4" 2 80 -- vae-decode --model "$taesd" --batch 4 --size 256x256
row "Qwen3-VL-2B encoder, 64 tokens" 1.2 70 -- text-encoder --model "$qwen" --tokens 64
row "Qwen3-VL-2B encoder, 64 tokens + one 256² image" 1.0 75 -- text-encoder --model "$qwen" --tokens 64 --image 256x256

# The embedded model through the element, as the README's pipeline runs it.
frames=300
t0=$(date +%s.%N)
GST_PLUGIN_PATH=.build/release gst-launch-1.0 -q videotestsrc num-buffers=$frames \
    ! video/x-raw,width=256,height=256,framerate=30/1 ! stylize batch-size=8 threads="$THREADS" ! fakesink sync=false
t1=$(date +%s.%N)
fps=$(awk "BEGIN{printf \"%.1f\", $frames/($t1-$t0)}")

echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $THREADS threads both sides, median of $REPEATS"
echo
echo "| work | stylize | PyTorch | speed-up (target) | effective vs. sgemm peak (target) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "| nano, whole element via gst-launch, 256², batch 8 | $fps fps ($frames frames) | — | — | ≥ 40 fps |"

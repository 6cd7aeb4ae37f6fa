#!/usr/bin/env bash
# The video-rate table of README "Performance": the embedded (or --model) model through
#   gst-launch-1.0 videotestsrc ! video/x-raw,width=W,height=H,framerate=30/1 \
#       ! stylize batch-size=8 [PROPS] ! fakesink sync=false
# at 256x256, 640x480 and 1280x720, RUNS runs each, with OpenBLAS's sgemm peak measured
# before each size's runs (machines and minutes differ; compare figures only with their peak).
# A run's fps excludes start-up: (N − 8) / (time of N frames − time of 8 frames), where the
# 8-frame time (model load, first conditioning, first batch) is the median of RUNS runs.
#
#   tools/bench/fps_table.sh [--model DIR] [--runs 3] [--frames N] [--sizes "256x256 640x480"] [PROP=VALUE ...]
#
# Needs `swift build -c release` (the plugin and stylize-tool from .build/release).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL= RUNS=3 FRAMES=0 SIZES="256x256 640x480 1280x720" PROPS=()
while [ $# -gt 0 ]; do
    case $1 in
        --model) MODEL=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --frames) FRAMES=$2; shift 2 ;;
        --sizes) SIZES=$2; shift 2 ;;
        *=*) PROPS+=("$1"); shift ;;
        *) echo "usage: tools/bench/fps_table.sh [--model DIR] [--runs N] [--frames N] [--sizes \"WxH ...\"] [PROP=VALUE ...]" >&2; exit 2 ;;
    esac
done
[ -x .build/release/stylize-tool ] || { echo "fps_table.sh: build first: swift build -c release" >&2; exit 1; }
export GST_PLUGIN_PATH=$PWD/.build/release
[ -n "$MODEL" ] && PROPS+=("model=$MODEL")

elapsed() {  # elapsed W H N: seconds for N frames through the element
    local t0 t1
    t0=$(date +%s.%N)
    gst-launch-1.0 -q videotestsrc num-buffers="$3" ! "video/x-raw,width=$1,height=$2,framerate=30/1" \
        ! stylize batch-size=8 "${PROPS[@]}" ! fakesink sync=false >/dev/null
    t1=$(date +%s.%N)
    awk "BEGIN{print $t1 - $t0}"
}
median() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

echo "$(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) cores ($(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -1)), properties: ${PROPS[*]:-(defaults)}"
echo
echo "| size | fps, run 1 / 2 / 3 … | median | sgemm peak (GFLOP/s) | median scaled to 140 GFLOP/s |"
echo "|---|---|---|---|---|"
for size in $SIZES; do
    w=${size%x*} h=${size#*x}
    n=$FRAMES
    if [ "$n" = 0 ]; then n=$(( w * h <= 65536 ? 520 : (w * h <= 307200 ? 264 : 160) )); fi
    peak=$(.build/release/stylize-tool bench flow --size 64x64 --repeats 1 | sed -nE 's/^sgemm peak +([0-9.]+).*/\1/p')
    base=$(for _ in $(seq "$RUNS"); do elapsed "$w" "$h" 8; done | median)
    list=()
    for _ in $(seq "$RUNS"); do
        t=$(elapsed "$w" "$h" "$n")
        list+=("$(awk "BEGIN{printf \"%.1f\", ($n - 8) / ($t - $base)}")")
    done
    med=$(printf '%s\n' "${list[@]}" | median)
    scaled=$(awk "BEGIN{printf \"%.1f\", $med * 140 / $peak}")
    echo "| ${w}×${h} | $(IFS=/; echo "${list[*]}" | sed 's#/# / #g') | $med | $peak | $scaled |"
done

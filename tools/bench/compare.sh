#!/usr/bin/env bash
# The performance table: stylize-tool bench and PyTorch (tools/bench/torch_reference.py) on
# the same random-weight folders of the real architectures, same batch, size and threads,
# one after the other in this run, plus the embedded model through gst-launch.
#
#   tools/bench/compare.sh [--repeats N] [--openvino] [--sdcpp] [--pairs N] [--torch] [--isa avx2|native]
#
# Developer-only: PyTorch comes from the tools venv (PYTHON=.venv-tools/bin/python; see
# tools/fixtures/requirements.txt). Needs `swift build -c release` first. Model folders are
# written once under $BENCH_MODELS (default out/bench-models; SD 1.5 + Qwen3-VL-2B ≈ 12 GB).
# THREADS (default: all cores) applies to both sides.
#
# Peers (optional; with either flag only the peer tables run, add --torch for the PyTorch
# one too). Each peer row interleaves the two sides in the same minutes: --pairs rounds
# (default 3) of `stylize-tool bench … --repeats N`, then the peer; the table shows the
# medians over the rounds, and the OpenBLAS sgemm peak our bench measured in that row.
#   --openvino  OpenVINO (tools/bench/openvino_reference.py; `pip install openvino` in the
#               tools venv): SD1.5 U-Net 256² batch 1 and 4, TAESD encode / decode batch 4,
#               each against OpenVINO's default precision (bf16 on CPUs with AVX512_BF16 or
#               AMX) and forced f32 (OV_PRECISIONS="default f32" picks). IR cached under
#               $BENCH_MODELS/openvino-ir (the U-Net's conversion: ~1 min, ~4–8 GB, once).
#   --sdcpp     stable-diffusion.cpp's sd-cli (tools/bench/build_sdcpp.sh builds it into
#               out/sdcpp; SDCPP=path overrides): our U-Net call at 256² batch 1 against its
#               time per sampling step (euler, cfg-scale 1: one U-Net call per step) with
#               --type f32 and q8_0 (SDCPP_TYPES), on a random SD 1.5 pipeline folder
#               (tools/bench/make_sdcpp_pipeline.py, sharing our U-Net's weights).
# Raw outputs of every peer-row run go to out/bench-logs/compare-<time>/.
#
# --isa sets the vector ISA both sides may use, so a comparison on a CPU with AVX-512 says
# what it compares (without it, the environment decides: this project's machines set
# OPENBLAS_CORETYPE=Haswell, which holds OpenBLAS to AVX2 while OpenVINO uses AVX-512):
#   avx2    OPENBLAS_CORETYPE=Haswell for us, ONEDNN_MAX_CPU_ISA=AVX2 for OpenVINO (its CPU
#           plugin honours oneDNN's cap); the ISA the project targets (our kernels are
#           compiled for Haswell whatever this says)
#   native  OpenBLAS detects the CPU (AVX-512 kernels where there are), OpenVINO uncapped
# sd.cpp is compiled for the build machine (GGML_NATIVE) and ignores both.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPEATS=3
PAIRS=3
OPENVINO=0 SDCPP_ROWS=0 TORCH= ISA=
while [ $# -gt 0 ]; do
    case $1 in
        --repeats) REPEATS=$2; shift 2 ;;
        --pairs) PAIRS=$2; shift 2 ;;
        --openvino) OPENVINO=1; shift ;;
        --sdcpp) SDCPP_ROWS=1; shift ;;
        --torch) TORCH=1; shift ;;
        --isa) ISA=$2; shift 2 ;;
        *) echo "usage: tools/bench/compare.sh [--repeats N] [--openvino] [--sdcpp] [--pairs N] [--torch] [--isa avx2|native]" >&2; exit 2 ;;
    esac
done
case $ISA in
    avx2) export OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2 ;;
    native) unset OPENBLAS_CORETYPE ONEDNN_MAX_CPU_ISA ;;
    "") ;;
    *) echo "compare.sh: --isa avx2 or native, not '$ISA'" >&2; exit 2 ;;
esac
[ -n "$TORCH" ] || { [ $OPENVINO = 0 ] && [ $SDCPP_ROWS = 0 ] && TORCH=1 || TORCH=0; }
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

# ---- Peers: interleaved rows (--openvino, --sdcpp) ----
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) exit 1; print ((NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
LOGS=out/bench-logs/compare-$(date -u +%Y%m%dT%H%M%S)
SD=${SDCPP:-out/sdcpp/sd-cli}
OV_PRECISIONS=${OV_PRECISIONS:-default f32}
SDCPP_TYPES=${SDCPP_TYPES:-f32 q8_0}
SDCPP_STEPS=${SDCPP_STEPS:-4}
peer_rows=() all_peaks=()

sdcpp_step() {  # sdcpp_step TYPE HxW LOG → "STEADY PRINTED": median s per step after the first, and the s/it sd-cli printed last
    local type=$1 h=${2%x*} w=${2#*x} log=$3
    "$SD" -m "$pipeline" --taesd "$taesd/diffusion_pytorch_model.safetensors" -W "$w" -H "$h" \
        --steps "$SDCPP_STEPS" --cfg-scale 1 --sampling-method euler -t "$THREADS" --type "$type" \
        -p "a photo of a cat" --seed 42 -o "$LOGS/sdcpp-$type.png" >"$log" 2>&1
    # Its progress line prints the running mean over the steps so far ("k/N - X.XXs/it", or
    # it/s below 1 s); step k took k·mean_k − (k−1)·mean_(k−1).
    tr '\r' '\n' <"$log" | sed -nE 's#.*\| *([0-9]+)/([0-9]+) - ([0-9.]+)(s/it|it/s).*#\1 \3 \4#p' | awk '
        $1 != last { m = ($3 == "it/s") ? 1 / $2 : $2; cum = $1 * m
                     if ($1 > 1) print cum - prev; prev = cum; last = $1; final = m }
        END { if (final == "") exit 1; printf "FINAL %.3f\n", final }' >"$log.steps"
    printf '%s %s\n' "$(grep -v FINAL "$log.steps" | median)" "$(sed -nE 's/^FINAL //p' "$log.steps")"
}

peer_time() {  # peer_time PEER ROUND -- bench arguments → seconds per call (and a note)
    local peer=$1 round=$2; shift 3
    local log=$LOGS/$(tr ' /²,' '____' <<<"$label")-$peer-$round.txt
    case $peer in
        ov-*) "$PY" tools/bench/openvino_reference.py "$@" --threads "$THREADS" --repeats "$REPEATS" \
                  --precision "${peer#ov-}" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
              echo "$(field "time/call" <"$log") $(sed -nE 's/^precision +([a-z0-9]+).*/\1/p' "$log")" ;;
        sd-*) local size; size=$(sed -nE 's/.*--size ([0-9]+x[0-9]+).*/\1/p' <<<"$*")
              sdcpp_step "${peer#sd-}" "${size:-256x256}" "$log" || { tr '\r' '\n' <"$log" | tail -20 >&2; return 1; } ;;
    esac
}

interleaved() {  # interleaved LABEL TARGET PEER... -- bench arguments
    label=$1; local target=$2; shift 2
    local peers=()
    while [ "$1" != "--" ]; do peers+=("$1"); shift; done
    shift
    local ours=() peaks=() ratios=() p r out
    declare -A theirs notes
    for ((r = 1; r <= PAIRS; r++)); do
        out=$("$TOOL" bench "$@" --threads "$THREADS" --repeats "$REPEATS")
        echo "$out" >"$LOGS/$(tr ' /²,' '____' <<<"$label")-stylize-$r.txt"
        ours+=("$(field "time/call" <<<"$out")")
        peaks+=("$(sed -nE 's/^sgemm peak +([0-9.]+).*/\1/p' <<<"$out")")
        ratios+=("$(sed -nE 's/^ratio +([0-9.]+)%.*/\1/p' <<<"$out")")
        for p in "${peers[@]}"; do
            read -r t note <<<"$(peer_time "$p" "$r" -- "$@" || true)"
            [ -n "$t" ] || { echo "compare.sh: $p failed in round $r of '$label' (log in $LOGS)" >&2; t=; note=; }
            theirs[$p]+="$t "; notes[$p]+="$note "
        done
        echo "  $label, round $r/$PAIRS: stylize ${ours[-1]} s (sgemm ${peaks[-1]} GFLOP/s)$(for p in "${peers[@]}"; do
            printf ', %s %s' "$p" "$(awk '{print $NF}' <<<"${theirs[$p]}")"; done)" >&2
    done
    all_peaks+=("${peaks[@]}")
    local t_ours pk pkmin pkmax eff
    t_ours=$(printf '%s\n' "${ours[@]}" | median)
    pk=$(printf '%s\n' "${peaks[@]}" | median)
    pkmin=$(printf '%s\n' "${peaks[@]}" | sort -g | head -1); pkmax=$(printf '%s\n' "${peaks[@]}" | sort -g | tail -1)
    eff=$(printf '%s\n' "${ratios[@]}" | median)
    for p in "${peers[@]}"; do
        local t_peer name extra=""
        t_peer=$(tr ' ' '\n' <<<"${theirs[$p]}" | grep . | median || true)
        if [ -z "$t_peer" ]; then
            peer_rows+=("| $label | $p | $t_ours s | failed (see $LOGS) | — | $pk GFLOP/s | $eff % |"); continue
        fi
        case $p in
            ov-*) name="OpenVINO $(tr ' ' '\n' <<<"${notes[$p]}" | grep . | sort -u | paste -sd/)"
                  [ "$p" = ov-default ] && name+=" (its default)" ;;
            sd-*) name="sd.cpp ${p#sd-}"
                  extra=" (printed $(tr ' ' '\n' <<<"${notes[$p]}" | grep . | median) s/it)"
                  sd_best=$(awk -v a="${sd_best:-1e9}" -v b="$t_peer" 'BEGIN{print (b < a) ? b : a}')
                  [ "$sd_best" = "$t_peer" ] && sd_best_name=$name ;;
        esac
        peer_rows+=("$(awk -v l="$label" -v n="$name" -v o="$t_ours" -v t="$t_peer" -v x="$extra" -v g="$target" \
            -v pk="$pk" -v lo="$pkmin" -v hi="$pkmax" -v e="$eff" 'BEGIN {
            s = t / o; verdict = (s >= g) ? "met" : sprintf("needs %.2f× faster", g / s)
            printf "| %s | %s | %.3f s | %.3f s%s | %.2f× (≥ %s×; %s) | %.1f GFLOP/s (%.1f–%.1f) | %s %% |",
                   l, n, o, t, x, s, g, verdict, pk, lo, hi, e }')")
        echo "${peer_rows[-1]}" >&2
    done
}

peer_tables() {
    [ $OPENVINO = 1 ] || [ $SDCPP_ROWS = 1 ] || return 0
    mkdir -p "$LOGS"
    local ov=()
    for p in $OV_PRECISIONS; do ov+=("ov-$p"); done
    if [ $OPENVINO = 1 ]; then
        "$PY" -c "import openvino" 2>/dev/null \
            || { echo "compare.sh: $PY lacks openvino (.venv-tools/bin/pip install openvino)" >&2; exit 1; }
        interleaved "SD1.5 U-Net, 256², batch 1" 1.5 "${ov[@]}" -- unet --model "$unet" --batch 1 --size 256x256
        interleaved "SD1.5 U-Net, 256², batch 4" 1.5 "${ov[@]}" -- unet --model "$unet" --batch 4 --size 256x256
        interleaved "TAESD encode, 256², batch 4" 1.5 "${ov[@]}" -- vae-encode --model "$taesd" --batch 4 --size 256x256
        interleaved "TAESD decode, 256², batch 4" 1.5 "${ov[@]}" -- vae-decode --model "$taesd" --batch 4 --size 256x256
    fi
    if [ $SDCPP_ROWS = 1 ]; then
        [ -x "$SD" ] || { echo "compare.sh: $SD missing: tools/bench/build_sdcpp.sh" >&2; exit 1; }
        pipeline=$M/sd15-pipeline
        [ -f "$pipeline/text_encoder/model.safetensors" ] \
            || "$PY" tools/bench/make_sdcpp_pipeline.py --unet "$unet" --out "$pipeline" >/dev/null 2>&1
        local sd=()
        for p in $SDCPP_TYPES; do sd+=("sd-$p"); done
        interleaved "SD1.5 U-Net step, 256², batch 1" 1 "${sd[@]}" -- unet --model "$unet" --batch 1 --size 256x256
    fi
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $THREADS threads both sides, $PAIRS interleaved rounds (stylize, then the peer) of median-of-$REPEATS, medians over the rounds; --isa ${ISA:-unset}, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-unset}; OpenBLAS kernels: $(OPENBLAS_VERBOSE=2 "$TOOL" bench flow --size 16x16 --repeats 1 2>&1 | sed -nE 's/^Core: //p' | head -1)"
    echo "OpenBLAS sgemm peak measured by stylize-tool bench in this run: median $(printf '%s\n' "${all_peaks[@]}" | median) GFLOP/s ($(printf '%s\n' "${all_peaks[@]}" | sort -g | head -1)–$(printf '%s\n' "${all_peaks[@]}" | sort -g | tail -1) over ${#all_peaks[@]} runs)"
    [ $OPENVINO = 1 ] && echo "OpenVINO $("$PY" -c 'import openvino; print(openvino.__version__.split("-")[0])'), PERFORMANCE_HINT LATENCY, INFERENCE_NUM_THREADS $THREADS, static shapes, f32 IR"
    [ $SDCPP_ROWS = 1 ] && echo "sd.cpp: sd-cli from $(ls -d out/sdcpp/stable_diffusion_cpp_python-* 2>/dev/null | sed 's#.*/##' | head -1) (GGML_NATIVE), euler, cfg-scale 1, $SDCPP_STEPS steps; time per step = median of steps 2..$SDCPP_STEPS (the s/it it printed: mean over all steps); its Conv2d weights are f16 whatever --type says"
    echo
    echo "| work | peer | stylize | peer | stylize speed-up (target) | sgemm peak, this row (min–max) | stylize vs. sgemm peak |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${peer_rows[@]}"
    if [ $SDCPP_ROWS = 1 ] && [ -n "${sd_best_name:-}" ]; then
        echo
        echo "sd.cpp's best weight type here: $sd_best_name, $sd_best s per step (target: stylize ahead of it)."
    fi
    echo "Raw outputs: $LOGS"
}

unet=$(folder sd15-unet); taesd=$(folder taesd)
[ $TORCH = 1 ] || { peer_tables; exit 0; }
qwen=$(folder qwen3-vl-2b)
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
peer_tables

#!/usr/bin/env bash
# Side-by-side video of the temporal adapter: input | without (temporal=false) | with
# (temporal=true), each panel labelled, the stream restyled twice by the same model.
#   pipelines/temporal-compare.sh IN OUT.(mp4|mkv|webm|avi) ["prompt"] [WIDTHxHEIGHT] [batch-size]
# IN: any file decodebin reads (gstreamer1.0-libav for MPEG-4/H.264 sources), e.g.
# /usr/share/doc/opencv-doc/examples/data/tree.avi. Frames are scaled to WIDTHxHEIGHT
# (default 320x240; letterboxed if the aspect differs). The model ($STYLIZE_MODEL_DIR, else
# models/nano) must have a temporal adapter (stylize.json "temporal"; tools/nano/temporal.py).
# Encoder by OUT's extension: .mp4 x264enc + mp4mux, .mkv x264enc + matroskamux,
# .webm vp8enc + webmmux, .avi jpegenc + avimux.
set -euo pipefail
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then sed -n '2,10p' "$0" | cut -c3-; exit 0; fi
usage="usage: temporal-compare.sh IN OUT.(mp4|mkv|webm|avi) [\"prompt\"] [WIDTHxHEIGHT] [batch-size]"
in="${1:?$usage}"
out="${2:?$usage}"
prompt="${3:-}"
size="${4:-320x240}"
batch="${5:-8}"
die() { echo "temporal-compare.sh: $*" >&2; exit 1; }

[ -f "$in" ] || die "$in: no such file"
[[ "$size" =~ ^([0-9]+)x([0-9]+)$ ]] || die "size must be WIDTHxHEIGHT, e.g. 320x240 (got '$size')"
w="${BASH_REMATCH[1]}"
h="${BASH_REMATCH[2]}"
(( w % 2 == 0 && h % 2 == 0 && w >= 32 && h >= 32 )) || die "width and height must be even and at least 32 (got $size)"
[[ "$batch" =~ ^[1-9][0-9]*$ ]] || die "batch-size must be a positive integer (got '$batch')"

source "$(dirname "$0")/common.sh"

have() { gst-inspect-1.0 "$1" >/dev/null 2>&1; }
need() { have "$1" || die "GStreamer element '$1' is missing (install $2)"; }
case "${out,,}" in
    *.mp4)  need x264enc gstreamer1.0-plugins-ugly; need mp4mux gstreamer1.0-plugins-good
            enc=(x264enc speed-preset=veryfast tune=zerolatency bitrate=4000 '!' mp4mux) ;;
    *.mkv)  need x264enc gstreamer1.0-plugins-ugly; need matroskamux gstreamer1.0-plugins-good
            enc=(x264enc speed-preset=veryfast tune=zerolatency bitrate=4000 '!' matroskamux) ;;
    *.webm) need vp8enc gstreamer1.0-plugins-good; need webmmux gstreamer1.0-plugins-good
            enc=(vp8enc deadline=1 cpu-used=8 target-bitrate=4000000 '!' webmmux) ;;
    *.avi)  need jpegenc gstreamer1.0-plugins-good; need avimux gstreamer1.0-plugins-good
            enc=(jpegenc quality=90 '!' avimux) ;;
    *)      die "OUT must end in .mp4, .mkv, .webm or .avi (got $out)" ;;
esac
need compositor gstreamer1.0-plugins-base
need decodebin gstreamer1.0-plugins-base
have stylize || die "the stylize element is not found in $GST_PLUGIN_PATH (swift build -c release)"
gst-inspect-1.0 stylize | grep -qE '^ +temporal +:' \
    || die "this build of the stylize element has no 'temporal' property: rebuild it (STYLIZE_REBUILD=1 or swift build -c release)"
[ -f "$STYLIZE_MODEL/stylize.json" ] || die "$STYLIZE_MODEL is not a model folder (no stylize.json)"
grep -q '"temporal"' "$STYLIZE_MODEL/stylize.json" \
    || die "$STYLIZE_MODEL has no temporal adapter (stylize.json \"temporal\"): train one with tools/nano/temporal.py"

labelled() {  # the pipeline fragment that labels a panel with $1 (nothing without textoverlay)
    have textoverlay || return 0
    printf '%s\n' textoverlay valignment=top halignment=left "font-desc=Sans 10" shaded-background=true "text=$1" '!'
}
mapfile -t l0 < <(labelled "input")
mapfile -t l1 < <(labelled "without (temporal=false)")
mapfile -t l2 < <(labelled "with (temporal=true)")

mkdir -p "$(dirname "$out")"
echo "input | without | with → $out ($size per panel, batch $batch, model $STYLIZE_MODEL)" >&2
stylize=(stylize model="$STYLIZE_MODEL" prompt="$prompt" batch-size="$batch")
gst-launch-1.0 -e \
    filesrc location="$in" ! decodebin ! videoconvert ! videoscale add-borders=true \
    ! video/x-raw,format=I420,width="$w",height="$h",pixel-aspect-ratio=1/1 ! tee name=t \
    t. ! queue max-size-buffers=64 max-size-time=0 max-size-bytes=0 ! "${l0[@]}" comp.sink_0 \
    t. ! queue max-size-buffers=64 max-size-time=0 max-size-bytes=0 ! "${stylize[@]}" temporal=false ! "${l1[@]}" comp.sink_1 \
    t. ! queue max-size-buffers=64 max-size-time=0 max-size-bytes=0 ! "${stylize[@]}" temporal=true ! "${l2[@]}" comp.sink_2 \
    compositor name=comp sink_1::xpos="$w" sink_2::xpos="$((2 * w))" \
    ! videoconvert ! video/x-raw,format=I420 ! "${enc[@]}" ! filesink location="$out"
echo "done: $out" >&2

#!/usr/bin/env bash
# The README's demo: restyles a sample clip with the embedded model and writes, under
# out/, a before/after video (input left, output right) and a contact sheet of one photo
# in every style the model knows.
#   pipelines/demo.sh ["prompt"]
# Inputs come from Debian's opencv-doc package (vtest.avi, fruits.jpg); decoding the
# clip needs gstreamer1.0-libav. Set STYLIZE_MODEL_DIR to use another model folder.
set -euo pipefail
source "$(dirname "$0")/common.sh"
prompt="${1:-}"
data=/usr/share/doc/opencv-doc/examples/data
clip="$data/vtest.avi"
photo="$data/fruits.jpg"
for f in "$clip" "$photo"; do
    [ -f "$f" ] || { echo "demo.sh: $f is missing: sudo apt-get install opencv-doc gstreamer1.0-libav" >&2; exit 1; }
done
mkdir -p "$STYLIZE_ROOT/out"
out="$STYLIZE_ROOT/out"

echo "before/after video → $out/demo-before-after.webm" >&2
gst-launch-1.0 -e \
    filesrc location="$clip" ! decodebin ! videoconvert ! videoscale ! videorate \
    ! video/x-raw,format=I420,width=256,height=192,framerate=10/1 ! tee name=t \
    t. ! queue max-size-buffers=64 ! comp.sink_0 \
    t. ! queue max-size-buffers=64 ! stylize model="$STYLIZE_MODEL" prompt="$prompt" batch-size=8 ! comp.sink_1 \
    compositor name=comp sink_1::xpos=256 ! videoconvert ! vp8enc deadline=1 cpu-used=8 \
    ! webmmux ! filesink location="$out/demo-before-after.webm"

echo "contact sheet → $out/contact-sheet.png" >&2
gst-launch-1.0 -q filesrc location="$photo" ! jpegdec ! videoconvert ! videoscale \
    ! video/x-raw,format=RGB,width=256,height=192 ! pngenc ! filesink location="$out/demo-input.png"
"$STYLIZE_TOOL" contact-sheet --model "$STYLIZE_MODEL" "$out/demo-input.png" "$out/contact-sheet.png"
echo "done: $out/demo-before-after.webm, $out/contact-sheet.png" >&2

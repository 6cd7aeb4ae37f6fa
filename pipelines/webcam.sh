#!/usr/bin/env bash
# Webcam → stylize → window.
#   pipelines/webcam.sh ["prompt"] [/dev/video0] [WIDTHxHEIGHT]
# A live source: max-batch-wait bounds how long a partial batch may wait, and a small
# batch keeps latency near (batch-size − 1) frame durations plus one batch's time.
set -euo pipefail
source "$(dirname "$0")/common.sh"
prompt="${1:-}"
device="${2:-/dev/video0}"
size="${3:-256x256}"
gst-launch-1.0 \
    v4l2src device="$device" ! videoconvert ! videoscale \
    ! video/x-raw,format=RGBx,width="${size%x*}",height="${size#*x}" \
    ! stylize model="$STYLIZE_MODEL" prompt="$prompt" batch-size=4 max-batch-wait=100 \
    ! videoconvert ! autovideosink sync=false

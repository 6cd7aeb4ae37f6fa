#!/usr/bin/env bash
# Restyles a video file into a WebM file.
#   pipelines/file-to-file.sh IN.(avi|mp4|webm|mkv|…) OUT.webm ["prompt"] [batch-size]
# Decodes with decodebin (install gstreamer1.0-libav for MPEG-4/H.264 sources), runs
# stylize at the source's size and rate, encodes VP8. Every input frame becomes one
# output frame with the same timestamps.
set -euo pipefail
source "$(dirname "$0")/common.sh"
in="${1:?usage: file-to-file.sh IN OUT.webm [prompt] [batch-size]}"
out="${2:?usage: file-to-file.sh IN OUT.webm [prompt] [batch-size]}"
prompt="${3:-}"
batch="${4:-8}"
gst-launch-1.0 -e \
    filesrc location="$in" ! decodebin ! videoconvert ! video/x-raw,format=I420 \
    ! stylize model="$STYLIZE_MODEL" prompt="$prompt" batch-size="$batch" \
    ! videoconvert ! vp8enc deadline=1 cpu-used=8 ! webmmux ! filesink location="$out"

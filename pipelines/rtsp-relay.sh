#!/usr/bin/env bash
# Camera → stylize-relay → any RTSP player.
#   pipelines/rtsp-relay.sh ["prompt"] [more stylize-relay options, e.g. --port 8554 --width 320]
# The camera is /dev/video0 (v4l2src) when there is one, else a moving test pattern. The
# relay restyles it with one shared stylize pipeline and serves H.264 over RTSP; watch it
# with any player, as many at once as you like:
#   gst-play-1.0 rtsp://127.0.0.1:8554/stylize
#   ffplay -rtsp_transport tcp rtsp://127.0.0.1:8554/stylize
#   vlc rtsp://127.0.0.1:8554/stylize
# While it runs, change the prompt or read its state:
#   curl -d "an ink drawing" http://127.0.0.1:8555/prompt
#   curl http://127.0.0.1:8555/status
# An RTSP camera instead: .build/release/stylize-relay --source rtsp://CAMERA/stream
# Ctrl-C stops it. stylize-relay --help lists every option.
set -euo pipefail
source "$(dirname "$0")/common.sh"
relay="$STYLIZE_ROOT/.build/release/stylize-relay"
if [ ! -x "$relay" ] || [ "${STYLIZE_REBUILD:-0}" = 1 ]; then
    (cd "$STYLIZE_ROOT" && swift build -c release --product stylize-relay >&2)
fi
prompt="${1:-}"
shift || true
if [ -e /dev/video0 ]; then
    camera="v4l2src device=/dev/video0"
else
    echo "rtsp-relay.sh: no /dev/video0, using a test pattern" >&2
    camera="videotestsrc is-live=true pattern=ball"
fi
# A live source: max-batch-wait bounds how long a partial batch waits for frames.
exec "$relay" --source-pipeline "$camera" --model "$STYLIZE_MODEL" --prompt "$prompt" \
    --batch-size 4 --max-batch-wait 100 "$@"

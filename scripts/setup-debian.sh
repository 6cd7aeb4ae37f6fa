#!/usr/bin/env bash
# Installs the Debian packages stylize needs: to build it, run its tests and the relay
# (always), and the sample clip the demo restyles (--demo). Works on a fresh machine as
# root (no sudo there) and as a user with sudo; refreshes the package lists first, since
# a fresh image has none. Installs nothing that is already there.
#
#   scripts/setup-debian.sh          build + tests
#   scripts/setup-debian.sh --demo   also opencv-doc (pipelines/demo.sh's clip and photos)
set -euo pipefail

# OpenBLAS, zlib (PNG), GStreamer headers and tools (the element), gst-rtsp-server and
# the RTP / H.264 plugins (the relay), PyGObject + numpy + gcc (the embedding examples'
# tests), binutils (strip, for the install check).
packages=(libopenblas-dev pkg-config zlib1g-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
          gstreamer1.0-tools gstreamer1.0-plugins-base
          libgstrtspserver-1.0-dev gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav
          python3-gi gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 python3-numpy gcc binutils)
case "${1:-}" in
    --demo) packages+=(opencv-doc) ;;
    "") ;;
    *) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
else
    echo "setup-debian.sh: run as root, or install sudo, to install: ${missing[*]}" >&2
    exit 1
fi
echo "setup-debian.sh: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"

#!/usr/bin/env bash
# Builds the `stylize` GStreamer plugin for installing and installs it with the embedded
# model, so that gst-inspect-1.0 / gst-launch-1.0 / apps find both with no environment
# variables set.
#
#   scripts/install.sh [--prefix DIR] [--plugin-dir DIR] [--user] [--destdir DIR]
#                      [--build-only | --no-build] [--uninstall]
#
# What goes where (defaults for a root install):
#   PLUGIN-DIR/libgststylize.so           GStreamer's system plugin folder
#                                         (pkg-config --variable=pluginsdir gstreamer-1.0,
#                                         /usr/lib/x86_64-linux-gnu/gstreamer-1.0 on Debian):
#                                         GStreamer searches it and ~/.local/share/gstreamer-1.0/plugins
#                                         by default, but not /usr/local/lib/gstreamer-1.0
#   PREFIX/share/stylize/models/nano/     the embedded model, PREFIX = /usr/local; the
#                                         element looks in the XDG data folders
#                                         (/usr/local/share, /usr/share, ~/.local/share) and
#                                         in <prefix>/share beside a <prefix>/lib/gstreamer-1.0 plugin
#
#   --user          PREFIX = ~/.local, PLUGIN-DIR = ~/.local/share/gstreamer-1.0/plugins
#                   (no root needed)
#   --destdir DIR   stage everything under DIR (packaging, tests); nothing else changes
#   --build-only    only build (as yourself, before `sudo scripts/install.sh --no-build`:
#                   sudo resets PATH, so root may not find swift)
#   --no-build      install what the last build left in .build-install/
#   --uninstall     remove what an install with the same options put there
#
# The plugin is linked with the Swift runtime inside it (-static-stdlib), so it needs no
# Swift toolchain at run time; the runtime's symbols stay private to it
# (--exclude-libs=ALL), so a host process with a Swift runtime of its own keeps that one.
# The build goes to .build-install/ (the development build in .build/ is untouched).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 1; }

prefix=/usr/local
plugin_dir=""
destdir=""
uninstall=0
build=1
install=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; prefix="$2"; shift 2 ;;
        --plugin-dir) [ $# -ge 2 ] || die "--plugin-dir needs a folder"; plugin_dir="$2"; shift 2 ;;
        --destdir) [ $# -ge 2 ] || die "--destdir needs a folder"; destdir="$2"; shift 2 ;;
        --user) prefix="$HOME/.local"; plugin_dir="$HOME/.local/share/gstreamer-1.0/plugins"; shift ;;
        --build-only) install=0; shift ;;
        --no-build) build=0; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
if [ -z "$plugin_dir" ]; then
    plugin_dir="$(pkg-config --variable=pluginsdir gstreamer-1.0)" \
        || die "pkg-config does not know gstreamer-1.0 (install libgstreamer1.0-dev) and no --plugin-dir was given"
fi
for dir in "$prefix" "$plugin_dir"; do
    case "$dir" in /*) ;; *) die "'$dir' is not an absolute path" ;; esac
done
[ -z "$destdir" ] || destdir="$(mkdir -p "$destdir" && cd "$destdir" && pwd)"

plugin="$destdir$plugin_dir/libgststylize.so"
model="$destdir$prefix/share/stylize/models/nano"

if [ "$uninstall" = 1 ]; then
    rm -f "$plugin"
    rm -rf "$model"
    # The folders above the model only when nothing else lives there.
    rmdir "$destdir$prefix/share/stylize/models" "$destdir$prefix/share/stylize" 2>/dev/null || true
    echo "removed $plugin and $model"
    exit 0
fi

[ -f "$root/models/nano/model_index.json" ] || die "$root/models/nano is missing or incomplete: nothing to install as the default model"

scratch="$root/.build-install"
built="$scratch/release/libgststylize.so"
if [ "$build" = 1 ]; then
    command -v swift >/dev/null || die "swift is not on PATH (under sudo: build first with --build-only, then install with --no-build)"
    (cd "$root" && swift build -c release --product gststylize --scratch-path "$scratch" \
        -Xswiftc -static-stdlib -Xlinker --exclude-libs=ALL)
fi
[ "$install" = 1 ] || { echo "built $built"; exit 0; }
[ -f "$built" ] || die "$built is missing: build it first (scripts/install.sh --build-only)"

# Install, then strip the installed copy (symbol tables are a quarter of the file).
install -d "$(dirname "$plugin")"
install -m 0644 "$built" "$plugin.tmp"
strip --strip-unneeded "$plugin.tmp"
mv -f "$plugin.tmp" "$plugin"
rm -rf "$model"
install -d "$(dirname "$model")"
cp -R "$root/models/nano" "$model"
chmod -R u=rwX,go=rX "$model"

# The installed plugin must load without the toolchain: no Swift runtime library (it is
# linked in), none missing.
libs="$(ldd "$plugin")"
if grep -qE "not found|libswift|libFoundation|libdispatch|libBlocksRuntime" <<<"$libs"; then
    echo "$libs" >&2
    die "$plugin needs a missing library or a Swift runtime library"
fi

echo "installed $plugin ($(du -h "$plugin" | cut -f1), Swift runtime linked in)"
echo "installed $model"
# Say so when the defaults will not find what went to unusual places.
case "$plugin_dir" in
    "$(pkg-config --variable=pluginsdir gstreamer-1.0 2>/dev/null)"|"$HOME/.local/share/gstreamer-1.0/plugins") ;;
    *) echo "note: GStreamer does not search $plugin_dir by default: set GST_PLUGIN_PATH=$plugin_dir" ;;
esac
case "$prefix" in
    /usr|/usr/local|"$HOME/.local") ;;
    *) [ "$plugin_dir" = "$prefix/lib/gstreamer-1.0" ] \
        || echo "note: the element does not look for its model in $prefix/share by default: set STYLIZE_MODEL_DIR=$prefix/share/stylize/models/nano" ;;
esac

#!/usr/bin/env bash
# Builds stable-diffusion.cpp's command-line tool (sd-cli) for the peer rows of
# tools/bench/compare.sh --sdcpp, from the source that the PyPI sdist of
# stable-diffusion-cpp-python vendors (vendor/stable-diffusion.cpp, with its ggml), so it
# needs only PyPI and Debian's cmake, no git.
#
#   tools/bench/build_sdcpp.sh            # → out/sdcpp/sd-cli (~8 min on 2 cores)
#
# Developer-only; everything lands in out/sdcpp/ (git-ignored). CPU backend, ggml's native
# build for this machine (GGML_NATIVE, the default), Release. PYTHON (default
# .venv-tools/bin/python) supplies pip; SDCPP_VERSION picks the sdist (default 0.4.7).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv-tools/bin/python}
VERSION=${SDCPP_VERSION:-0.4.7}
OUT=out/sdcpp
JOBS=${JOBS:-$(nproc)}

if ! command -v cmake >/dev/null; then
    if [ "$(id -u)" = 0 ]; then apt-get install -y cmake; else
        echo "build_sdcpp.sh: cmake missing (sudo apt-get install -y cmake)" >&2; exit 1; fi
fi
mkdir -p "$OUT"
sdist=$OUT/stable_diffusion_cpp_python-$VERSION.tar.gz
if [ ! -f "$sdist" ]; then
    # --no-binary for this package only: `--no-binary :all:` would also build pip's
    # metadata-time build dependencies (cmake, ninja) from source.
    "$PY" -m pip download --no-deps --no-binary stable-diffusion-cpp-python \
        "stable-diffusion-cpp-python==$VERSION" -d "$OUT"
fi
src=$OUT/stable_diffusion_cpp_python-$VERSION/vendor/stable-diffusion.cpp
[ -d "$src" ] || tar -xzf "$sdist" -C "$OUT"
# The CLI target is sd-cli in 0.4.x (sd in older trees).
target=$(sed -nE 's/^set\(TARGET (sd(-cli)?)\)/\1/p' "$src/examples/cli/CMakeLists.txt")
[ -n "$target" ] || { echo "build_sdcpp.sh: no CLI target in $src/examples/cli/CMakeLists.txt" >&2; exit 1; }
t0=$(date +%s)
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DSD_WEBM=OFF >/dev/null
cmake --build "$src/build" -j"$JOBS" --target "$target"
cp "$src/build/bin/$target" "$OUT/sd-cli"
echo "build_sdcpp.sh: $OUT/sd-cli ($target from stable-diffusion-cpp-python $VERSION) built in $(( $(date +%s) - t0 )) s"

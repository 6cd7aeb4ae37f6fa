# Shared by the pipeline scripts: finds the built plugin (GST_PLUGIN_PATH) and the
# stylize-tool binary, building the release configuration first when needed.
STYLIZE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$STYLIZE_ROOT/.build/release/libgststylize.so" ] || [ "${STYLIZE_REBUILD:-0}" = 1 ]; then
    (cd "$STYLIZE_ROOT" && swift build -c release >&2)
fi
export GST_PLUGIN_PATH="$STYLIZE_ROOT/.build/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
STYLIZE_TOOL="$STYLIZE_ROOT/.build/release/stylize-tool"
# A model folder for the scripts: $STYLIZE_MODEL_DIR, else the element's default.
STYLIZE_MODEL="${STYLIZE_MODEL_DIR:-$STYLIZE_ROOT/models/nano}"

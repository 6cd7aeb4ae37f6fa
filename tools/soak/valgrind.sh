#!/bin/sh
# tools/soak/cycles.py under valgrind memcheck: definite leaks after CYCLES state cycles
# and PROMPTS prompt changes of the real element with the embedded model.
#
#     tools/soak/valgrind.sh [CYCLES [PROMPTS]]      (defaults: 100 and 50)
#
# Run from the repository root after `swift build -c release`. Developer tooling, not CI
# (100 cycles take several minutes under valgrind). The log goes to
# /tmp/stylize-valgrind.<pid>.log (or $VALGRIND_LOG); the script then prints valgrind's
# leak summary and every definite-leak record whose stack passes through this project's
# code (libgststylize.so: the element, the engine, the Swift runtime it uses). Exit
# status: 1 if cycles.py failed or any definite leak record remains (suppressed ones are
# listed in tools/soak/valgrind.supp, each with its reason).
set -u
cycles=${1:-100}
prompts=${2:-50}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
log=${VALGRIND_LOG:-/tmp/stylize-valgrind.$$.log}
supp_glib=/usr/share/glib-2.0/valgrind/glib.supp
[ -f "$supp_glib" ] && glib="--suppressions=$supp_glib" || glib=

cd "$root" || exit 2
# PYTHONMALLOC=malloc: Python's own allocator hides blocks from memcheck.
# G_SLICE=always-malloc (older GLib) and G_DEBUG=gc-friendly: GLib frees / clears what it can.
GST_PLUGIN_PATH="$root/.build/release" PYTHONMALLOC=malloc G_SLICE=always-malloc G_DEBUG=gc-friendly \
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,possible --errors-for-leak-kinds=definite \
    --num-callers=50 $glib --suppressions="$here/valgrind.supp" --log-file="$log" \
    /usr/bin/python3 "$here/cycles.py" --cycles "$cycles" --prompt-changes "$prompts" \
        --every $(( cycles / 10 > 0 ? cycles / 10 : 1 )) --warmup $(( cycles / 5 )) --timeout 300
status=$?

echo "== valgrind ($log) =="
sed -n '/LEAK SUMMARY/,/suppressed:/p' "$log" | sed 's/^==[0-9]*== //'
grep 'ERROR SUMMARY' "$log" | sed 's/^==[0-9]*== //'
# Definite-leak records (blocks between "definitely lost in loss record" and a blank line).
ours=$(awk '/definitely lost in loss record/{rec=$0; keep=1; next} keep && /^==[0-9]+== $/{if (rec ~ /gststylize|Stylize|swift/) print rec; keep=0; rec=""; next} keep{rec=rec "\n" $0}' "$log")
definite=$(grep -c 'definitely lost in loss record' "$log")
echo "definite-leak records: $definite; through libgststylize / Swift: $(printf '%s' "$ours" | grep -c 'definitely lost in loss record')"
[ -n "$ours" ] && printf '%s\n' "$ours" | sed 's/^==[0-9]*== //'
# Possibly lost (interior pointers: Swift metadata and runtime caches show up here) is
# not an error; its total through libgststylize is printed to compare runs of different
# lengths (a leak per cycle would grow with CYCLES).
possible=$(awk '/possibly lost in loss record/{rec=$0; n=$2; keep=1; next} keep && /^==[0-9]+== $/{if (rec ~ /gststylize/) {gsub(",", "", n); t+=n; c++}; keep=0; rec=""; next} keep{rec=rec "\n" $0} END{printf "%d bytes in %d records", t, c}' "$log")
echo "possibly lost through libgststylize: $possible"
[ "$status" -eq 0 ] && [ "$definite" -eq 0 ] && exit 0
exit 1

#!/usr/bin/env bash
# Builds the test bundle with a sanitizer and runs the tests it is meant for (CI runs this
# from .ci/run; about 12 minutes on 2 cores, most of it the two builds):
#
#   ThreadSanitizer   engine, element and relay tests (StylizeEngineTests, GstStylizeTests,
#                     RelayTests) in .build-tsan: ~4 min build, ~1 min run.
#   AddressSanitizer  every model and tokenizer test (StylizeModelsTests: tokenizers,
#                     loading errors, configs, schedulers, and the parity tests, whose
#                     fixtures are tiny models: 82 tests in ~4 s) and the PNG and
#                     fuzz-regression tests (StylizeEngineTests) in .build-asan:
#                     ~2-5 min build, ~10 s run.
#
#   scripts/sanitizers.sh                 both
#   scripts/sanitizers.sh thread|address  one
#
# Release configuration with -enable-testing (debug is several times slower under a
# sanitizer). A race or memory error fails the run: TSan reports make the test process exit
# non-zero; ASan aborts at the first error and LeakSanitizer fails the run at exit.
# scripts/tsan.supp and scripts/lsan.supp list what is not ours to fix, each with its reason. Under a sanitizer the malloc-counting interposer of the
# hot-path tests is compiled out and those tests skip (Tests/CMallocCounter).
#
# Not run under TSan: PipelineTests, RelayCommandTests and RelayEndToEndTests start
# gst-launch-1.0 / gst-inspect-1.0 / stylize-relay processes that load libgststylize.so,
# and a TSan-instrumented plugin cannot be loaded into an uninstrumented process
# (undefined __tsan_* symbols). The in-process element tests cover the same threads.
set -uo pipefail
cd "$(dirname "$0")/.."

which=("$@")
[ ${#which[@]} -eq 0 ] && which=(thread address)
status=0
summary=()

run() {  # name scratch filter skip env...
    local name=$1 scratch=$2 filter=$3 skip=$4
    shift 4
    local flags=(-c release -Xswiftc -enable-testing --sanitize="$name" --scratch-path "$scratch")
    local start=$SECONDS log
    log=$(mktemp)
    echo "== sanitizers.sh: building with --sanitize=$name ($scratch)"
    swift build --build-tests "${flags[@]}" 2>&1 | grep -v "prohibited flag"
    if [ "${PIPESTATUS[0]}" -ne 0 ]; then
        summary+=("$name: BUILD FAILED")
        status=1
        return
    fi
    local built=$((SECONDS - start))
    echo "== sanitizers.sh: running under --sanitize=$name (filter $filter)"
    local args=(--skip-build "${flags[@]}" --disable-swift-testing --filter "$filter")
    [ -n "$skip" ] && args+=(--skip "$skip")
    env "$@" swift test "${args[@]}" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local ran=$((SECONDS - start - built))
    local reports
    reports=$(grep -cE "^(WARNING: ThreadSanitizer|==[0-9]+==ERROR: AddressSanitizer|SUMMARY: AddressSanitizer)" "$log" || true)
    local line
    line=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?" "$log" | tail -1 | sed -E 's/^[[:space:]]*//; s/ in [0-9.]+ .*//')
    summary+=("$name: ${line:-no XCTest summary}, $reports sanitizer report(s), exit $rc; build ${built}s, run ${ran}s")
    [ "$rc" -ne 0 ] && status=1
    rm -f "$log"
}

for s in "${which[@]}"; do
    case "$s" in
        thread)
            run thread .build-tsan 'StylizeEngineTests\.|GstStylizeTests\.|RelayTests\.' \
                'GstStylizeTests\.PipelineTests|RelayTests\.RelayCommandTests|RelayTests\.RelayEndToEndTests' \
                TSAN_OPTIONS="suppressions=$PWD/scripts/tsan.supp second_deadlock_stack=1 history_size=4 print_suppressions=1"
            ;;
        address)
            run address .build-asan \
                'StylizeModelsTests\.|StylizeEngineTests\.(PNGCodecTests|FuzzRegressionTests)' \
                '' ASAN_OPTIONS="detect_leaks=1 halt_on_error=1 strict_string_checks=1" \
                LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp print_suppressions=1"
            ;;
        *) echo "usage: $0 [thread|address]..." >&2; exit 2 ;;
    esac
done

echo "== sanitizers.sh summary"
printf '  %s\n' "${summary[@]}"
exit $status

#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ (Fuzz/README.md) and runs each for a while:
#
#   scripts/fuzz.sh [seconds] [target...]     default 30 s each, every target
#   FUZZ_KEEP_GOING=1 scripts/fuzz.sh 600     long runs: keep fuzzing past a finding
#
# Targets: safetensors, config, tokenizer, png. Each starts from its committed seeds in
# Fuzz/corpus/<target>/ and writes what it learns to Fuzz/.work/<target>/ (ignored);
# a crash, leak, timeout or out-of-memory input lands in Fuzz/findings/<target>/ and
# fails the run. A finding becomes a regression test (Fuzz/README.md says how).
# Built in debug, so Swift's bounds and overflow checks stay on (the release build's
# numeric targets use -Ounchecked). SwiftPM's --sanitize=fuzzer alone links libFuzzer's
# main but, building every product, left the code without coverage counters; the
# -Xswiftc flags instrument every module for coverage and ASan explicitly, and a run that
# reports no instrumented module fails.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(safetensors config tokenizer png)

start=$SECONDS
flags=(--package-path Fuzz --scratch-path Fuzz/.build --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address)
echo "== fuzz.sh: building Fuzz/ (${flags[*]:4})"
swift build "${flags[@]}" 2>&1 \
    | grep -v -e "prohibited flag" -e "Cannot export local symbol"
if [ "${PIPESTATUS[0]}" -ne 0 ]; then echo "fuzz.sh: build failed" >&2; exit 1; fi
bin=$(swift build "${flags[@]}" --show-bin-path)
echo "== fuzz.sh: built in $((SECONDS - start)) s"

status=0
report=()
for t in "${targets[@]}"; do
    exe="$bin/fuzz-$t"
    [ -x "$exe" ] || { echo "fuzz.sh: no target $t" >&2; status=1; continue; }
    work=Fuzz/.work/$t findings=Fuzz/findings/$t
    mkdir -p "$work" "$findings"
    log=Fuzz/.work/$t.log  # kept for a look after the run
    : >"$log"
    opts=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/")
    before=$(find "$findings" -type f | wc -l)
    echo "== fuzz.sh: $t for $seconds s"
    # A finding stops libFuzzer; with FUZZ_KEEP_GOING=1 it is restarted on the corpus it
    # has grown until the time is spent (its -fork mode gathers no coverage here).
    t0=$SECONDS rc=0
    while :; do
        left=$((seconds - (SECONDS - t0)))
        [ "$left" -gt 0 ] || break
        # The Swift runtime's backtracer would trip over ASan when a check fails;
        # libFuzzer prints the stack itself.
        SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" \
            "$exe" "${opts[@]}" -max_total_time="$left" "$work" "Fuzz/corpus/$t" >>"$log" 2>&1
        r=$?
        [ "$r" -ne 0 ] && rc=$r
        [ "$r" -ne 0 ] && [ "${FUZZ_KEEP_GOING:-0}" = 1 ] || break
    done
    after=$(find "$findings" -type f | wc -l)
    if ! grep -q "INFO: Loaded [0-9]* modules" "$log"; then
        echo "fuzz.sh: fuzz-$t has no coverage instrumentation: the run was blind" >&2
        rc=1
    fi
    execs=$(grep -oE "stat::number_of_executed_units: +[0-9]+" "$log" | awk '{s+=$2} END {print s+0}')
    rate=$(( ${execs:-0} / (SECONDS - t0 > 0 ? SECONDS - t0 : 1) ))
    cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+" "$log" | tail -1)
    new=$((after - before))
    line="$t: ${execs:-?} execs, ${rate:-?} execs/s, ${cov:-cov ?}, $new new finding(s), exit $rc"
    report+=("$line")
    if [ "$rc" -ne 0 ] || [ "$new" -gt 0 ]; then
        status=1
        grep -E "ERROR: (AddressSanitizer|libFuzzer)|Fatal error|SUMMARY|Test unit written" "$log" | head -20
    fi
done
echo "== fuzz.sh summary ($((SECONDS - start)) s)"
printf '  %s\n' "${report[@]}"
exit $status

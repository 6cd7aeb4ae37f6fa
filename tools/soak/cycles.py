#!/usr/bin/python3
"""Soak check of the stylize element: state cycles and prompt changes, with RSS.

Developer tooling, not part of CI. Build first (`swift build -c release`), then from the
repository root:

    GST_PLUGIN_PATH=.build/release /usr/bin/python3 tools/soak/cycles.py
    GST_PLUGIN_PATH=.build/release /usr/bin/python3 tools/soak/cycles.py --cycles 1000 --prompt-changes 200

Phase 1 runs a real pipeline with the real engine and the embedded model,

    videotestsrc num-buffers=F ! video/x-raw,width=S,height=S ! stylize model=models/nano batch-size=B ! fakesink

through NULL -> PLAYING -> (EOS) -> NULL `--cycles` times (the same pipeline object, so
the element loads its model at every NULL->READY and drops it at READY->NULL), checking
that every cycle reaches EOS with F buffers at the sink. Phase 2 plays a live
videotestsrc through the element and sets `prompt` `--prompt-changes` times, cycling
through the style prompts of models/nano/stylize.json, waiting each time for the
element's `stylize-conditioning` message naming that prompt and then for F more buffers
at the sink (so every prompt is used for at least one batch).

VmRSS (from /proc/self/status) is printed every `--every` cycles / changes. After both
phases it prints the growth from the end of warm-up (`--warmup` cycles / changes) to the
end, and exits 1 if a cycle failed, a prompt never became active, or (with
`--max-growth`) RSS grew by more than that percentage.

Run under valgrind with tools/soak/valgrind.sh (fewer cycles; see its header).
Runs on Debian's /usr/bin/python3 with python3-gi and python3-gst-1.0.
"""
import argparse
import json
import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def style_prompts(model):
    with open(os.path.join(model, "stylize.json")) as f:
        styles = json.load(f)["styles"]
    return [p for s in styles for p in s["prompts"]]


class Counter:
    """Counts buffers reaching a pad (a pad probe)."""

    def __init__(self, pad):
        self.n = 0
        pad.add_probe(Gst.PadProbeType.BUFFER, self._probe)

    def _probe(self, pad, info):
        self.n += 1
        return Gst.PadProbeReturn.OK


def wait_bus(pipeline, types, timeout, match=None):
    """The first message of `types` (and satisfying `match`) within `timeout` seconds;
    an ERROR message is returned whatever `types` says."""
    bus = pipeline.get_bus()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        msg = bus.timed_pop_filtered(int(left * Gst.SECOND), types | Gst.MessageType.ERROR)
        if msg is None:
            return None
        if msg.type == Gst.MessageType.ERROR or match is None or match(msg):
            return msg


def error_text(msg):
    err, debug = msg.parse_error()
    return f"{err.message} ({debug})"


def log_rss(label, i, samples, start):
    r = rss_kib()
    samples.append((i, r))
    print(f"{label} {i:5d}: VmRSS {r / 1024:8.1f} MiB  ({time.monotonic() - start:7.1f} s)", flush=True)


def growth(samples, warmup):
    base = next((r for i, r in samples if i >= warmup), samples[0][1])
    end = samples[-1][1]
    return base, end, 100.0 * (end - base) / base


def cycles(args):
    desc = (f"videotestsrc num-buffers={args.frames} pattern=ball"
            f" ! video/x-raw,width={args.size},height={args.size}"
            f" ! stylize name=s model={args.model} batch-size={args.batch_size}"
            " ! fakesink name=sink sync=false")
    print(f"cycles: {args.cycles} x NULL->PLAYING->EOS->NULL of: {desc}", flush=True)
    pipeline = Gst.parse_launch(desc)
    counter = Counter(pipeline.get_by_name("sink").get_static_pad("sink"))
    samples, failures, start = [], 0, time.monotonic()
    log_rss("cycle", 0, samples, start)
    for i in range(1, args.cycles + 1):
        counter.n = 0
        if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            print(f"cycle {i}: set_state(PLAYING) failed", flush=True)
            failures += 1
        else:
            msg = wait_bus(pipeline, Gst.MessageType.EOS, args.timeout)
            if msg is None:
                print(f"cycle {i}: no EOS within {args.timeout} s ({counter.n} buffers)", flush=True)
                failures += 1
            elif msg.type == Gst.MessageType.ERROR:
                print(f"cycle {i}: error: {error_text(msg)}", flush=True)
                failures += 1
            elif counter.n != args.frames:
                print(f"cycle {i}: {counter.n} buffers at the sink, expected {args.frames}", flush=True)
                failures += 1
        pipeline.set_state(Gst.State.NULL)
        if i % args.every == 0 or i == args.cycles:
            log_rss("cycle", i, samples, start)
    pipeline.get_bus().set_flushing(True)
    pipeline = None
    return samples, failures


def prompt_changes(args):
    prompts = style_prompts(args.model)
    desc = (f"videotestsrc is-live=true pattern=ball"
            f" ! video/x-raw,width={args.size},height={args.size},framerate=30/1"
            f" ! stylize name=s model={args.model} batch-size={args.batch_size} max-batch-wait=100"
            " ! fakesink name=sink sync=false")
    print(f"prompts: {args.prompt_changes} changes through {len(prompts)} style prompts while playing: {desc}",
          flush=True)
    pipeline = Gst.parse_launch(desc)
    element = pipeline.get_by_name("s")
    counter = Counter(pipeline.get_by_name("sink").get_static_pad("sink"))
    pipeline.set_state(Gst.State.PLAYING)
    samples, failures, waits, start = [], 0, [], time.monotonic()
    log_rss("prompt", 0, samples, start)
    last = element.get_property("prompt")
    for i in range(1, args.prompt_changes + 1):
        prompt = prompts[i % len(prompts)]
        if prompt == last:
            prompt = prompts[(i + 1) % len(prompts)]
        last = prompt
        t0 = time.monotonic()
        element.set_property("prompt", prompt)

        def active(msg, prompt=prompt):
            s = msg.get_structure()
            return s is not None and s.get_name() == "stylize-conditioning" and s.get_string("prompt") == prompt

        msg = wait_bus(pipeline, Gst.MessageType.ELEMENT, args.timeout, active)
        if msg is None:
            print(f"prompt {i}: '{prompt}' not active within {args.timeout} s", flush=True)
            failures += 1
        elif msg.type == Gst.MessageType.ERROR:
            print(f"prompt {i}: error: {error_text(msg)}", flush=True)
            failures += 1
            break
        else:
            waits.append(time.monotonic() - t0)
            # Let a batch or two run on the new conditioning before the next change.
            target = counter.n + args.frames
            deadline = time.monotonic() + args.timeout
            while counter.n < target and time.monotonic() < deadline:
                time.sleep(0.01)
            if counter.n < target:
                print(f"prompt {i}: no frames out within {args.timeout} s after '{prompt}' became active", flush=True)
                failures += 1
        if i % args.every == 0 or i == args.prompt_changes:
            log_rss("prompt", i, samples, start)
    frames = counter.n
    pipeline.set_state(Gst.State.NULL)
    pipeline = None
    if waits:
        waits.sort()
        print(f"prompts: active after p50 {waits[len(waits) // 2]:.2f} s, max {waits[-1]:.2f} s; "
              f"{frames} frames out while changing", flush=True)
    return samples, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "nano"))
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--prompt-changes", type=int, default=200)
    ap.add_argument("--frames", type=int, default=4, help="num-buffers per cycle")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--every", type=int, default=50, help="print RSS every this many cycles / changes")
    ap.add_argument("--warmup", type=int, default=100, help="cycles / changes before the RSS baseline")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per cycle / prompt change")
    ap.add_argument("--max-growth", type=float, default=None, help="fail if RSS grew more (%%) after warm-up")
    args = ap.parse_args()

    Gst.init(None)
    if Gst.ElementFactory.find("stylize") is None:
        sys.exit("cycles.py: no stylize element; run with GST_PLUGIN_PATH=.build/release")
    print(f"pid {os.getpid()}, VmRSS at start {rss_kib() / 1024:.1f} MiB", flush=True)

    ok = True
    if args.cycles > 0:
        samples, failures = cycles(args)
        base, end, pct = growth(samples, args.warmup)
        print(f"cycles: {args.cycles} done, {failures} failed; VmRSS after warm-up {base / 1024:.1f} MiB, "
              f"end {end / 1024:.1f} MiB, growth {pct:+.2f} %", flush=True)
        ok &= failures == 0 and (args.max_growth is None or pct <= args.max_growth)
    if args.prompt_changes > 0:
        samples, failures = prompt_changes(args)
        base, end, pct = growth(samples, min(args.warmup, args.prompt_changes // 2))
        print(f"prompts: {args.prompt_changes} done, {failures} failed; VmRSS after warm-up {base / 1024:.1f} MiB, "
              f"end {end / 1024:.1f} MiB, growth {pct:+.2f} %", flush=True)
        ok &= failures == 0 and (args.max_growth is None or pct <= args.max_growth)
    print("PASS" if ok else "FAIL", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

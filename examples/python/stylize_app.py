#!/usr/bin/env python3
"""An application that embeds the `stylize` element through PyGObject.

It pushes numpy frames through `appsrc ! stylize ! appsink`, switches the prompt while
the pipeline plays, and reads the element's bus messages: `stylize-conditioning` (a
prompt became active: prompt, seconds) and `stylize-stats` (once a second: fps,
latency-p50, latency-p95, encoder-seconds, frames-out, skipped).

    GST_PLUGIN_PATH=.build/release /usr/bin/python3 examples/python/stylize_app.py

The same frames go through under each prompt, so any difference in the output is the
prompt's doing. It prints one JSON report on stdout and exits with status 1 when a check
fails: every frame in comes out, at the input's size; the second prompt's conditioning
message arrives; the frames after the switch differ clearly from those before; stats
messages arrive. Needs Debian's python3-gi, python3-gst-1.0 and python3-numpy.
"""
import argparse
import json
import sys
import time

import gi
import numpy as np

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstApp, GstVideo  # noqa: E402,F401  (GstApp: appsink's methods)

FPS = 30


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--first-prompt", default="a pencil sketch")
    p.add_argument("--second-prompt", default="neon glow")
    p.add_argument("--frames", type=int, default=24, help="frames under each prompt")
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--model", help="model folder (default: the element's own default)")
    p.add_argument("--timeout", type=float, default=60, help="seconds to wait for any one thing")
    return p.parse_args()


def make_frames(count, width, height):
    """Synthetic RGB frames: colour gradients with a square that moves."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(count):
        f = np.empty((height, width, 3), np.uint8)
        f[..., 0] = (255 * x / max(1, width - 1)).astype(np.uint8)
        f[..., 1] = (255 * y / max(1, height - 1)).astype(np.uint8)
        f[..., 2] = 128
        s = min(width, height) // 3
        x0 = (i * 3) % max(1, width - s)
        f[height // 3:height // 3 + s, x0:x0 + s] = (240, 230, 40)
        frames.append(f)
    return frames


class App:
    def __init__(self, args):
        self.args = args
        model = f' model="{args.model}"' if args.model else ""
        caps = f"video/x-raw,format=RGB,width={args.width},height={args.height},framerate={FPS}/1"
        self.pipeline = Gst.parse_launch(
            f'appsrc name=src format=time caps="{caps}" '
            f'! stylize name=stylize batch-size={args.batch_size} prompt="{args.first_prompt}"{model} '
            "! appsink name=sink sync=false")
        self.src = self.pipeline.get_by_name("src")
        self.stylize = self.pipeline.get_by_name("stylize")
        self.sink = self.pipeline.get_by_name("sink")
        self.bus = self.pipeline.get_bus()
        self.pushed = 0
        self.conditioning = []   # (prompt, seconds)
        self.stats = []          # dicts
        self.errors = []

    def push(self, frame):
        buf = Gst.Buffer.new_wrapped(frame.tobytes())
        buf.pts = self.pushed * Gst.SECOND // FPS
        buf.duration = Gst.SECOND // FPS
        self.pushed += 1
        if self.src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
            raise RuntimeError(f"appsrc refused frame {self.pushed - 1}")

    def pull(self):
        """The next output frame as an array, or None at EOS or after the timeout."""
        sample = self.sink.try_pull_sample(int(self.args.timeout * Gst.SECOND))
        if sample is None:
            return None
        video = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
        width, height, stride = video.width, video.height, video.stride[0]
        buffer = sample.get_buffer()
        ok, info = buffer.map(Gst.MapFlags.READ)
        if not ok:
            raise RuntimeError("could not map an output frame")
        try:
            rows = np.frombuffer(info.data, np.uint8, count=stride * height).reshape(height, stride)
            return rows[:, :width * 3].reshape(height, width, 3).copy()
        finally:
            buffer.unmap(info)

    def read_bus(self, timeout=0.0):
        """Records the element's messages; returns False on an error."""
        types = Gst.MessageType.ELEMENT | Gst.MessageType.ERROR
        msg = self.bus.timed_pop_filtered(int(timeout * Gst.SECOND), types)
        while msg is not None:
            if msg.type == Gst.MessageType.ERROR:
                err, _ = msg.parse_error()
                self.errors.append(err.message)
            else:
                s = msg.get_structure()
                if s.get_name() == "stylize-conditioning":
                    self.conditioning.append((s.get_value("prompt"), s.get_value("seconds")))
                elif s.get_name() == "stylize-stats":
                    self.stats.append({k: s.get_value(k) for k in
                                       ("fps", "latency-p50", "latency-p95", "encoder-seconds", "frames-out", "skipped")})
            msg = self.bus.pop_filtered(types)
        return not self.errors

    def wait_for_conditioning(self, prompt):
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            if any(p == prompt for p, _ in self.conditioning):
                return True
            if not self.read_bus(timeout=0.1):
                return False
        return False

    def run_phase(self, frames):
        """Pushes `frames` at the frame rate, as a camera would deliver them (the element
        posts stats once a second of streaming), then pulls as many outputs (batch-size
        must divide the count)."""
        start = time.monotonic()
        for i, f in enumerate(frames):
            time.sleep(max(0.0, start + i / FPS - time.monotonic()))
            self.push(f)
        out = []
        for _ in frames:
            o = self.pull()
            self.read_bus()
            if o is None:
                break
            out.append(o)
        return out


def mean_colour(frames):
    return np.mean([f.reshape(-1, 3).mean(axis=0) for f in frames], axis=0) if frames else np.zeros(3)


def main():
    args = parse_args()
    if args.frames % args.batch_size:
        sys.exit("--frames must be a multiple of --batch-size (frames come out a batch at a time)")
    Gst.init(None)
    app = App(args)
    inputs = make_frames(args.frames, args.width, args.height)
    app.pipeline.set_state(Gst.State.PLAYING)

    before = app.run_phase(inputs)
    app.stylize.set_property("prompt", args.second_prompt)
    activated = app.wait_for_conditioning(args.second_prompt)
    after = app.run_phase(inputs)

    app.src.emit("end-of-stream")
    leftover = app.pull()          # None: nothing beyond what was pushed comes out
    eos = app.bus.timed_pop_filtered(int(args.timeout * Gst.SECOND), Gst.MessageType.EOS | Gst.MessageType.ERROR)
    if eos is not None and eos.type == Gst.MessageType.ERROR:
        app.errors.append(eos.parse_error()[0].message)
    app.read_bus()
    app.pipeline.set_state(Gst.State.NULL)

    outputs = before + after + ([leftover] if leftover is not None else [])
    colour_before, colour_after = mean_colour(before), mean_colour(after)
    pairs = list(zip(before, after))
    frame_difference = float(np.mean([np.abs(a.astype(np.float32) - b.astype(np.float32)).mean() for a, b in pairs])) if pairs else 0.0
    report = {
        "model": app.stylize.get_property("model"),
        "frames_in": app.pushed,
        "frames_out": len(outputs),
        "sizes": sorted({f"{o.shape[1]}x{o.shape[0]}" for o in outputs}),
        "prompts": [args.first_prompt, args.second_prompt],
        "conditioning": [{"prompt": p, "seconds": s} for p, s in app.conditioning],
        "second_prompt_active": activated,
        "mean_rgb_before": [round(float(c), 1) for c in colour_before],
        "mean_rgb_after": [round(float(c), 1) for c in colour_after],
        "mean_colour_distance": round(float(np.linalg.norm(colour_after - colour_before)), 1),
        "mean_abs_frame_difference": round(frame_difference, 1),
        "stats_messages": len(app.stats),
        "last_stats": app.stats[-1] if app.stats else None,
        "got_eos": eos is not None and eos.type == Gst.MessageType.EOS,
        "errors": app.errors,
    }
    print(json.dumps(report, indent=1))

    failures = []
    if app.errors:
        failures.append(f"pipeline errors: {app.errors}")
    if report["frames_out"] != report["frames_in"]:
        failures.append(f"{report['frames_in']} frames in, {report['frames_out']} out")
    if report["sizes"] != [f"{args.width}x{args.height}"]:
        failures.append(f"output sizes {report['sizes']}, expected {args.width}x{args.height}")
    if not activated:
        failures.append(f"no stylize-conditioning message for {args.second_prompt!r}")
    # On 0-255 pixels: the same inputs under two different styles.
    if report["mean_abs_frame_difference"] < 10 or report["mean_colour_distance"] < 10:
        failures.append("the frames after the prompt change hardly differ from those before")
    if not app.stats:
        failures.append("no stylize-stats message")
    if not report["got_eos"]:
        failures.append("no EOS")
    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

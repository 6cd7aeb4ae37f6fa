#!/usr/bin/python3
"""Soak check of stylize-relay under churn, on loopback only. Stops by itself.

Developer tooling, not part of CI. Build first (`swift build -c release`), then from the
repository root:

    /usr/bin/python3 tools/soak/relay_churn.py --minutes 10

What runs, all on 127.0.0.1 with free ports:

* the RTSP test source of the relay tests (Tests/RelayTests/rtsp-test-source.py, SMPTE
  bars as H.264), SIGKILLed every `--restart-every` seconds (first at half that), kept
  down `--outage` seconds, then restarted on the same port;
* .build/release/stylize-relay pulling it with the embedded model (its default source
  timeout / reconnect options unless `--relay-arg` adds some);
* `--staying` RTSP clients in this process (rtspsrc ! decodebin ! GRAY8 appsink, TCP and
  UDP alternately) that stay for the whole run and record every decoded frame's arrival
  time and its bar structure (the standard deviation of the column means of luma over the
  top two thirds): the restyled SMPTE bars score far above `--content-structure` whatever
  the style, the relay's restyled black slate during an outage near 0 (a per-pixel
  spread does not separate them: some styles texture the black slate);
* churning clients: `gst-launch-1.0 rtspsrc ! decodebin ! fakesink` processes, one
  started every `--join-every` seconds (at most `--max-churners` at once), each living a
  random 2-8 s and ended by SIGINT or SIGKILL in turn (clean teardown or vanished peer);
* a prompt change (POST /prompt, the next style prompt of models/nano/stylize.json) every
  `--prompt-every` seconds. From `--prompt-every` + 2 s before each kill until `--max-recovery` + 2 s after
  the restart, prompts of the `--unseparable` styles (pencil) are skipped: the nano
  model draws column structure into a black frame in those styles (about 20, as much as
  the pencil-styled bars after H.264), so no per-frame measure could tell the slate from
  the source then. Prompt changes go on through every outage with the other styles.

Printed: the relay's VmRSS every minute (with /status clients and reconnects); for each
source restart and each staying client, the recovery time: seconds from the restart to
the first decoded frame showing the source again (structure > `--content-structure`) that is
followed by `--recovered-frames` - 1 more such frames (repeats of the last frame before the
kill are ruled out: the outage outlasts the relay's --slate-after); each staying client's
longest gap between any two frames; whether the relay crashed; and its exit status on
SIGTERM at the end. Every staying client's frames (seconds since the start, structure),
the prompt changes and the restarts are written to the log folder (frames-*.csv,
events.csv) for a closer look. Exits 1 if the relay crashed or did not stop cleanly, a staying
client failed or did not recover within `--max-recovery` seconds, or RSS grew more than
`--max-growth` % from the first minute's sample to the last.

Runs on Debian's /usr/bin/python3 with python3-gi, gir1.2-gst-rtsp-server-1.0 and numpy.
"""
import argparse
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

try:
    import numpy
except ImportError:  # the structure is then computed on a subsample in pure Python
    numpy = None

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
# Loopback only: never let an http_proxy setting route the control requests elsewhere.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def http(url, data=None, timeout=5):
    try:
        with HTTP.open(urllib.request.Request(url, data=data), timeout=timeout) as r:
            return r.status, r.read()
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        return None, str(e).encode()


class Log:
    def __init__(self, path):
        self.path = path
        self.file = open(path, "w")

    def text(self):
        try:
            with open(self.path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Source:
    def __init__(self, port, logdir):
        self.port, self.logdir, self.proc, self.n = port, logdir, None, 0

    def start(self):
        self.n += 1
        self.log = Log(os.path.join(self.logdir, f"source-{self.n}.log"))
        self.proc = subprocess.Popen([PYTHON, os.path.join(ROOT, "Tests/RelayTests/rtsp-test-source.py"), str(self.port)],
                                     stdout=self.log.file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if "ready" in self.log.text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit(f"relay_churn: test source did not start:\n{self.log.text()}")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class StayingClient:
    """rtspsrc -> decodebin -> GRAY8 appsink in this process; records (time, structure)."""

    def __init__(self, name, url, transport, content_structure):
        self.name, self.transport = name, transport
        self.frames = []  # (monotonic time, structure: std of the column means of the top 2/3)
        self.lock = threading.Lock()
        self.errors = []
        self.content_structure = content_structure
        self.pipeline = Gst.parse_launch(
            f"rtspsrc location={url} latency=100 protocols={transport}"
            " ! decodebin ! videoconvert ! video/x-raw,format=GRAY8"
            " ! appsink name=sink emit-signals=true sync=false max-buffers=8 drop=true")
        self.pipeline.get_by_name("sink").connect("new-sample", self._sample)
        bus = self.pipeline.get_bus()
        bus.enable_sync_message_emission()
        bus.connect("sync-message", self._message)

    def _sample(self, sink):
        sample = sink.emit("pull-sample")
        now = time.monotonic()
        buf, caps = sample.get_buffer(), sample.get_caps().get_structure(0)
        w, h = caps.get_value("width"), caps.get_value("height")
        ok, info = buf.map(Gst.MapFlags.READ)
        if not ok:
            return Gst.FlowReturn.OK
        try:
            stride = (w + 3) & ~3  # GRAY8 rows are 4-byte aligned
            rows = (2 * h) // 3  # the SMPTE bars; the bottom third is castellations and PLUGE
            if numpy is not None:
                plane = numpy.frombuffer(info.data, dtype=numpy.uint8, count=stride * h).reshape(h, stride)
                columns = plane[:rows, :w].mean(axis=0)
                structure = float(columns.std())
            else:
                columns = [sum(info.data[y * stride + x] for y in range(0, rows, 4)) / len(range(0, rows, 4))
                           for x in range(w)]
                m = sum(columns) / w
                structure = (sum((c - m) ** 2 for c in columns) / w) ** 0.5
        finally:
            buf.unmap(info)
        with self.lock:
            self.frames.append((now, structure))
        return Gst.FlowReturn.OK

    def _message(self, bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            self.errors.append(f"{time.monotonic():.1f}: {err.message}")
        elif msg.type == Gst.MessageType.EOS:
            self.errors.append(f"{time.monotonic():.1f}: end of stream")

    def start(self):
        self.pipeline.set_state(Gst.State.PLAYING)

    def stop(self):
        self.pipeline.set_state(Gst.State.NULL)

    def count(self):
        with self.lock:
            return len(self.frames)

    def snapshot(self):
        with self.lock:
            return list(self.frames)

    def recovery(self, restarted, needed, until):
        """Seconds from `restarted` to the first content frame that begins a run of
        `needed` content frames, or None."""
        run_start, run = None, 0
        for t, s in self.snapshot():
            if t < restarted or t > until:
                continue
            if s > self.content_structure:
                if run == 0:
                    run_start = t
                run += 1
                if run >= needed:
                    return run_start - restarted
            else:
                run = 0
        return None

    def outage_seen(self, killed, restarted):
        """Frames during the outage, and how many of them were slate (low structure)."""
        during = [s for t, s in self.snapshot() if killed < t < restarted]
        return len(during), sum(1 for s in during if s <= self.content_structure)

    def longest_gap(self):
        times = [t for t, _ in self.snapshot()]
        return max((b - a for a, b in zip(times, times[1:])), default=None)


class Churner:
    def __init__(self, n, url, logdir, lifetime, hard):
        self.n, self.hard, self.ends = n, hard, time.monotonic() + lifetime
        transport = "tcp" if n % 2 else "udp"
        self.log = Log(os.path.join(logdir, f"churner-{n}.log"))
        self.proc = subprocess.Popen(
            ["gst-launch-1.0", "-q", "rtspsrc", f"location={url}", f"protocols={transport}", "latency=100",
             "!", "decodebin", "!", "fakesink", "sync=false"],
            stdout=self.log.file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def end(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if self.hard else signal.SIGINT)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--relay", default=os.path.join(ROOT, ".build/release/stylize-relay"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models/nano"))
    ap.add_argument("--size", type=int, default=128, help="served width and height")
    ap.add_argument("--framerate", type=int, default=15)
    ap.add_argument("--staying", type=int, default=3)
    ap.add_argument("--join-every", type=float, default=2.5)
    ap.add_argument("--max-churners", type=int, default=3)
    ap.add_argument("--prompt-every", type=float, default=4)
    ap.add_argument("--restart-every", type=float, default=60)
    ap.add_argument("--outage", type=float, default=3, help="seconds the source stays down")
    ap.add_argument("--content-structure", type=float, default=10,
                    help="bar structure above which a frame shows the source (measured at 128x128: bars 37-80 "
                         "by style, the black slate under 2 except pencil)")
    ap.add_argument("--unseparable", default="pencil", help="styles kept out of the outages (comma-separated)")
    ap.add_argument("--recovered-frames", type=int, default=5)
    ap.add_argument("--max-recovery", type=float, default=10)
    ap.add_argument("--max-growth", type=float, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--logdir", default=None, help="keep the processes' logs here (default: a temp folder)")
    ap.add_argument("--relay-arg", action="append", default=[], help="extra stylize-relay argument (repeatable)")
    args = ap.parse_args()
    if not os.access(args.relay, os.X_OK):
        sys.exit(f"relay_churn: {args.relay} not built: run swift build -c release")

    Gst.init(None)
    random.seed(args.seed)
    logdir = args.logdir or subprocess.check_output(["mktemp", "-d", "/tmp/relay-churn.XXXXXX"], text=True).strip()
    os.makedirs(logdir, exist_ok=True)
    source_port, relay_port, control_port = free_port(), free_port(), free_port()
    control = f"http://127.0.0.1:{control_port}"
    url = f"rtsp://127.0.0.1:{relay_port}/stylize"

    def status():
        code, body = http(control + "/status")
        try:
            return json.loads(body) if code == 200 else None
        except ValueError:
            return None

    source = Source(source_port, logdir)
    source.start()
    env = {k: v for k, v in os.environ.items()
           if k not in ("GST_PLUGIN_PATH", "GST_PLUGIN_PATH_1_0", "STYLIZE_MODEL_DIR", "http_proxy", "HTTP_PROXY")}
    relay_log = Log(os.path.join(logdir, "relay.log"))
    relay_cmd = [args.relay, "--source", f"rtsp://127.0.0.1:{source_port}/test",
                 "--host", "127.0.0.1", "--port", str(relay_port),
                 "--control-host", "127.0.0.1", "--control-port", str(control_port),
                 "--width", str(args.size), "--height", str(args.size), "--framerate", str(args.framerate),
                 "--model", args.model] + args.relay_arg
    print("relay:", " ".join(relay_cmd), flush=True)
    print(f"logs: {logdir}", flush=True)
    relay = subprocess.Popen(relay_cmd, stdout=relay_log.file, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and relay.poll() is None:
        s = status()
        if s and s.get("source", {}).get("state") == "playing":
            break
        time.sleep(0.2)
    else:
        source.kill()
        relay.kill()
        sys.exit(f"relay_churn: relay never played the source (exit {relay.poll()}):\n{relay_log.text()[-3000:]}")

    staying = [StayingClient(f"stay{i + 1}-{t}", url, t, args.content_structure)
               for i, t in zip(range(args.staying), itertools.cycle(["tcp", "udp"]))]
    for c in staying:
        c.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(c.count() >= 30 for c in staying):
        time.sleep(0.2)
    print("warm-up: staying clients' frames " + ", ".join(f"{c.name} {c.count()}" for c in staying), flush=True)

    with open(os.path.join(args.model, "stylize.json")) as f:
        prompts = [(s["name"], p) for s in json.load(f)["styles"] for p in s["prompts"]]
    unseparable = set(args.unseparable.split(",")) if args.unseparable else set()
    prompt_index = 0

    start = time.monotonic()
    end = start + args.minutes * 60
    next_rss, next_join, next_prompt = start, start, start + args.prompt_every
    next_kill = start + args.restart_every / 2
    restarts = []  # (killed, restarted)
    rss = []  # (minute, KiB)
    churners, churn_started, prompt_posts, prompt_failures = [], 0, 0, []
    crashed = None
    events = open(os.path.join(logdir, "events.csv"), "w")
    events.write("seconds,event,detail\n")
    while time.monotonic() < end:
        now = time.monotonic()
        if relay.poll() is not None:
            crashed = f"relay exited with {relay.returncode} at {now - start:.1f} s"
            break
        if now >= next_rss:
            r = rss_kib(relay.pid)
            s = status() or {}
            rss.append((round((now - start) / 60), r))
            print(f"minute {(now - start) / 60:5.1f}: relay VmRSS {r / 1024:7.1f} MiB; clients {s.get('clients')}, "
                  f"source {s.get('source', {}).get('state')} reconnects {s.get('source', {}).get('reconnects')}, "
                  f"fps {s.get('fps')}, active prompt {s.get('active_prompt')!r}; churners started {churn_started}, "
                  f"prompts posted {prompt_posts}", flush=True)
            next_rss += 60
        if now >= next_kill and now + args.outage + 15 < end:
            source.kill()
            killed = time.monotonic()
            time.sleep(args.outage)
            source.start()
            restarts.append((killed, time.monotonic()))
            events.write(f"{killed - start:.3f},source killed,\n{restarts[-1][1] - start:.3f},source restarted,\n")
            print(f"  {killed - start:6.1f} s: source killed; restarted {restarts[-1][1] - killed:.1f} s later", flush=True)
            next_kill += args.restart_every
            continue
        for c in [c for c in churners if time.monotonic() >= c.ends]:
            c.end()
            churners.remove(c)
        if now >= next_join:
            if len(churners) < args.max_churners:
                churn_started += 1
                churners.append(Churner(churn_started, url, logdir, random.uniform(2, 8), hard=churn_started % 2 == 0))
            next_join += args.join_every
        if now >= next_prompt:
            near_restart = now > next_kill - args.prompt_every - 2 or any(now < r + args.max_recovery + 2 for _, r in restarts[-1:])
            while True:
                style, prompt = prompts[prompt_index % len(prompts)]
                prompt_index += 1
                if not (near_restart and style in unseparable):
                    break
            code, body = http(control + "/prompt", data=prompt.encode())
            prompt_posts += 1
            events.write(f"{now - start:.3f},prompt,{prompt}\n")
            if code != 202:
                prompt_failures.append(f"{now - start:.1f} s: POST /prompt -> {code} {body[:100]!r}")
            next_prompt += args.prompt_every
        time.sleep(0.05)

    final = time.monotonic()
    if crashed is None:
        rss.append((round((final - start) / 60, 1), rss_kib(relay.pid)))
        s = status() or {}
        print(f"end {(final - start) / 60:5.1f}: relay VmRSS {rss[-1][1] / 1024:7.1f} MiB; clients {s.get('clients')}, "
              f"reconnects {s.get('source', {}).get('reconnects')}, active prompt {s.get('active_prompt')!r}", flush=True)
    for c in churners:
        c.end()
    for c in staying:
        c.stop()
    exit_status = None
    if crashed is None:
        relay.send_signal(signal.SIGTERM)
        try:
            exit_status = relay.wait(timeout=15)
        except subprocess.TimeoutExpired:
            relay.kill()
            exit_status = "hung (killed)"
    source.kill()

    ok = crashed is None and exit_status == 0
    events.close()
    for c in staying:
        with open(os.path.join(logdir, f"frames-{c.name}.csv"), "w") as f:
            f.write("seconds,structure\n")
            f.writelines(f"{t - start:.3f},{v:.2f}\n" for t, v in c.snapshot())
    print("\n== results ==")
    print(f"minutes {(final - start) / 60:.1f}; staying clients {len(staying)}; churning clients started {churn_started}; "
          f"prompt changes {prompt_posts} ({len(prompt_failures)} not accepted); source restarts {len(restarts)}")
    print(f"relay: {'CRASHED: ' + crashed if crashed else 'no crash'}; exit status on SIGTERM: {exit_status}")
    if crashed:
        print(relay_log.text()[-4000:])
    for f in prompt_failures[:10]:
        print("  prompt:", f)
    print("relay VmRSS by minute (MiB): " + ", ".join(f"{m}:{r / 1024:.1f}" for m, r in rss))
    if len(rss) >= 3:
        base, last = rss[1][1], rss[-1][1]
        pct = 100.0 * (last - base) / base
        print(f"relay VmRSS after warm-up (minute {rss[1][0]}) {base / 1024:.1f} MiB, end {last / 1024:.1f} MiB, "
              f"growth {pct:+.2f} % (limit {args.max_growth} %)")
        ok &= pct <= args.max_growth
    print(f"recovery after each source restart (s, to the first of {args.recovered_frames} frames showing the source):")
    for c in staying:
        times = []
        for i, (killed, restarted) in enumerate(restarts):
            until = restarts[i + 1][0] if i + 1 < len(restarts) else final
            times.append(c.recovery(restarted, args.recovered_frames, until))
        outages = [c.outage_seen(k, r) for k, r in restarts]
        worst = None if None in times or not times else max(times)
        print(f"  {c.name}: " + " ".join("never" if t is None else f"{t:.1f}" for t in times)
              + f"  | worst {'never' if worst is None and times else (f'{worst:.1f}' if worst is not None else '-')}"
              + f"; frames {c.count()}, longest gap {c.longest_gap() or 0:.2f} s"
              + f"; outage frames (slate) {', '.join(f'{n}({b})' for n, b in outages)}"
              + (f"; errors: {c.errors}" if c.errors else ""))
        ok &= not c.errors and None not in times and (not times or max(times) <= args.max_recovery)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

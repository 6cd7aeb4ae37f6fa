#!/usr/bin/env python3
"""Changes the `prompt` property of a playing stylize element and reports when each new
prompt becomes active (the element's `stylize-conditioning` bus message), plus the
once-a-second `stylize-stats`.

    pipelines/live-prompt.py ["first prompt" "second prompt" …]

Plays videotestsrc → stylize → fakesink and switches to the next prompt every 2 s.
Needs Debian's python3-gi and python3-gst-1.0; finds the plugin like the other scripts
(run `swift build -c release` first, or any pipelines/*.sh once).
"""
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["GST_PLUGIN_PATH"] = os.path.join(root, ".build", "release") + os.pathsep + os.environ.get("GST_PLUGIN_PATH", "")

import gi  # noqa: E402

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

prompts = sys.argv[1:] or ["make it an oil painting", "make it a pencil sketch", "make it look like a comic"]
model = os.environ.get("STYLIZE_MODEL_DIR", os.path.join(root, "models", "nano"))

Gst.init(None)
pipeline = Gst.parse_launch(
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=256,height=256,framerate=30/1 "
    f"! stylize name=s batch-size=4 max-batch-wait=100 model=\"{model}\" ! fakesink sync=true")
stylize = pipeline.get_by_name("s")
stylize.set_property("prompt", prompts[0])
loop = GLib.MainLoop()
state = {"next": 1}


def on_message(bus, msg):
    if msg.type == Gst.MessageType.ELEMENT and msg.get_structure() is not None:
        s = msg.get_structure()
        if s.get_name() == "stylize-conditioning":
            print(f"active: {s.get_value('prompt')!r} after {s.get_value('seconds'):.3f} s", flush=True)
        elif s.get_name() == "stylize-stats":
            print(f"stats: {s.to_string()}", flush=True)
    elif msg.type == Gst.MessageType.ERROR:
        err, debug = msg.parse_error()
        print(f"error: {err.message}", file=sys.stderr)
        loop.quit()
    elif msg.type == Gst.MessageType.EOS:
        loop.quit()


def switch():
    if state["next"] >= len(prompts):
        loop.quit()
        return False
    print(f"setting prompt {prompts[state['next']]!r}", flush=True)
    stylize.set_property("prompt", prompts[state["next"]])
    state["next"] += 1
    return True


bus = pipeline.get_bus()
bus.add_signal_watch()
bus.connect("message", on_message)
pipeline.set_state(Gst.State.PLAYING)
GLib.timeout_add(2000, switch)
try:
    loop.run()
finally:
    pipeline.set_state(Gst.State.NULL)

#!/usr/bin/python3
"""An RTSP test source for RelayTests, independent of stylize-relay.

    rtsp-test-source.py PORT

Serves videotestsrc (SMPTE bars, live, 15 fps) as H.264 at rtsp://127.0.0.1:PORT/test and
prints "ready" once listening. SIGTERM or SIGINT stop it; the tests also SIGKILL it to
make the source drop. Runs on Debian's /usr/bin/python3 with python3-gi and
gir1.2-gst-rtsp-server-1.0 (not a pyenv/venv python, which lacks gi).
"""
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def encoder():
    if Gst.ElementFactory.find("x264enc"):
        return "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15"
    if Gst.ElementFactory.find("openh264enc"):
        return "openh264enc gop-size=15 complexity=low"
    sys.exit("rtsp-test-source: no H.264 encoder (x264enc or openh264enc)")


def main():
    port = sys.argv[1]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( videotestsrc is-live=true pattern=smpte"
        " ! video/x-raw,width=320,height=240,framerate=15/1"
        f" ! {encoder()} ! rtph264pay name=pay0 pt=96 config-interval=-1 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        sys.exit(f"rtsp-test-source: cannot listen on 127.0.0.1:{port}")
    loop = GLib.MainLoop()
    for s in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, s, loop.quit)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()

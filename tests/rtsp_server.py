"""A real RTSP server for tests: GStreamer test video and audio at rtsp://127.0.0.1:<port>/room.

Run as ``python tests/rtsp_server.py PORT``; stop it with SIGTERM. Prints "ready" once listening.
"""

from __future__ import annotations

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

LAUNCH = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! rtph264pay name=pay0 pt=96 "
    "audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=16000,channels=1 ! audioconvert "
    "! opusenc ! rtpopuspay name=pay1 pt=97 )"
)


def main() -> int:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(sys.argv[1])
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(LAUNCH)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/room", factory)
    if server.attach(None) == 0:
        sys.stderr.write("cannot listen\n")
        return 1
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

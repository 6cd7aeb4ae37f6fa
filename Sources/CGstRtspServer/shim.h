#pragma once
// gst-rtsp-server for the relay (flags from pkg-config gstreamer-rtsp-server-1.0), the
// app elements' API (appsrc / appsink) and GLib's Unix signal sources.
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/rtsp-server/rtsp-server.h>

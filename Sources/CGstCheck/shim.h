#pragma once
// GstHarness for the element tests (pkg-config gstreamer-check-1.0). Only test targets
// depend on this module, so the plugin itself never links libgstcheck.
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/check/gstharness.h>

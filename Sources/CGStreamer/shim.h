#pragma once
// GStreamer core + video for Swift. Compiler and linker flags come from
// pkg-config gstreamer-video-1.0 (which requires gstreamer-1.0 and gstreamer-base-1.0).
#include <gst/gst.h>
#include <gst/video/video.h>

/* A C program that embeds the `stylize` element, built the two ways GStreamer apps
 * build pipelines:
 *
 *   1. gst_parse_launch: videotestsrc ! stylize ! fakesink, counting buffers with
 *      fakesink's handoff signal;
 *   2. gst_element_factory_make + gst_element_link_many: videotestsrc ! capsfilter !
 *      stylize ! appsink, pulling every frame and checking its size.
 *
 * Build and run (from the repository root, after `swift build -c release`):
 *
 *   cc -o stylize_embed examples/c/stylize_embed.c \
 *      $(pkg-config --cflags --libs gstreamer-1.0 gstreamer-app-1.0)
 *   GST_PLUGIN_PATH=.build/release ./stylize_embed [FRAMES] [PROMPT]
 *
 * Prints one line per pipeline ("parse-launch: 12/12 frames", "factory-make: 12/12
 * frames 96x64") and exits with status 1 when an element is missing, a pipeline
 * reports an error, or a frame is missing or of the wrong size. */
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <stdlib.h>

#define WIDTH 96
#define HEIGHT 64

/* Plays `pipeline` to EOS; FALSE (after printing it) on an error message. */
static gboolean
run_to_eos (GstElement * pipeline, const char *label)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg;
  gboolean ok;

  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    g_printerr ("%s: the pipeline did not start\n", label);
  }
  msg = gst_bus_timed_pop_filtered (bus, 120 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  ok = msg != NULL && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS;
  if (msg == NULL) {
    g_printerr ("%s: no EOS within 120 s\n", label);
  } else if (!ok) {
    GError *err = NULL;
    gchar *debug = NULL;
    gst_message_parse_error (msg, &err, &debug);
    g_printerr ("%s: error from %s: %s (%s)\n", label, GST_OBJECT_NAME (msg->src),
        err->message, debug ? debug : "");
    g_clear_error (&err);
    g_free (debug);
  }
  if (msg)
    gst_message_unref (msg);
  gst_object_unref (bus);
  return ok;
}

static void
count_handoff (GstElement * sink, GstBuffer * buffer, GstPad * pad, gpointer data)
{
  (*(guint *) data)++;
}

/* 1. A pipeline description, as gst-launch-1.0 takes it. */
static gboolean
run_parse_launch (guint frames, const char *prompt)
{
  GError *err = NULL;
  gchar *description = g_strdup_printf ("videotestsrc num-buffers=%u pattern=ball "
      "! video/x-raw,width=%d,height=%d ! stylize batch-size=4 prompt=\"%s\" "
      "! fakesink name=sink signal-handoffs=true", frames, WIDTH, HEIGHT, prompt);
  GstElement *pipeline = gst_parse_launch (description, &err);
  GstElement *sink;
  guint count = 0;
  gboolean ok;

  g_free (description);
  if (pipeline == NULL || err != NULL) {
    /* A missing element (no `stylize` on the plugin path) ends up here. */
    g_printerr ("parse-launch: %s\n", err ? err->message : "no pipeline");
    g_clear_error (&err);
    if (pipeline)
      gst_object_unref (pipeline);
    return FALSE;
  }
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_signal_connect (sink, "handoff", G_CALLBACK (count_handoff), &count);
  gst_object_unref (sink);

  ok = run_to_eos (pipeline, "parse-launch");
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  g_print ("parse-launch: %u/%u frames\n", count, frames);
  return ok && count == frames;
}

/* 2. Elements made and linked one by one; the app pulls every frame from appsink. */
static gboolean
run_factory_make (guint frames, const char *prompt)
{
  GstElement *pipeline = gst_pipeline_new ("factory-make");
  GstElement *src = gst_element_factory_make ("videotestsrc", NULL);
  GstElement *filter = gst_element_factory_make ("capsfilter", NULL);
  GstElement *stylize = gst_element_factory_make ("stylize", NULL);
  GstElement *sink = gst_element_factory_make ("appsink", NULL);
  GstCaps *caps;
  GstBus *bus;
  guint count = 0, wrong_size = 0, idle_seconds = 0;
  gboolean ok;

  if (!src || !filter || !stylize || !sink) {
    g_printerr ("factory-make: element missing:%s%s%s%s\n", src ? "" : " videotestsrc",
        filter ? "" : " capsfilter", stylize ? "" : " stylize", sink ? "" : " appsink");
    return FALSE;
  }
  g_object_set (src, "num-buffers", frames, NULL);
  gst_util_set_object_arg (G_OBJECT (src), "pattern", "ball");
  caps = gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING, "RGBx",
      "width", G_TYPE_INT, WIDTH, "height", G_TYPE_INT, HEIGHT, NULL);
  g_object_set (filter, "caps", caps, NULL);
  gst_caps_unref (caps);
  g_object_set (stylize, "batch-size", 4, "prompt", prompt, NULL);
  g_object_set (sink, "sync", FALSE, NULL);

  gst_bin_add_many (GST_BIN (pipeline), src, filter, stylize, sink, NULL);
  if (!gst_element_link_many (src, filter, stylize, sink, NULL)) {
    g_printerr ("factory-make: could not link the elements\n");
    gst_object_unref (pipeline);
    return FALSE;
  }

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  bus = gst_element_get_bus (pipeline);
  while (!gst_app_sink_is_eos (GST_APP_SINK (sink)) && idle_seconds < 120) {
    GstSample *sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), GST_SECOND);
    GstStructure *s;
    gint w = 0, h = 0;
    if (sample == NULL) {
      /* An error stops the stream without EOS: leave it on the bus for run_to_eos. */
      GstMessage *error = gst_bus_peek (bus);
      gboolean failed = error && GST_MESSAGE_TYPE (error) == GST_MESSAGE_ERROR;
      if (error)
        gst_message_unref (error);
      if (failed)
        break;
      idle_seconds++;
      continue;
    }
    s = gst_caps_get_structure (gst_sample_get_caps (sample), 0);
    gst_structure_get_int (s, "width", &w);
    gst_structure_get_int (s, "height", &h);
    if (w != WIDTH || h != HEIGHT)
      wrong_size++;
    count++;
    gst_sample_unref (sample);
  }
  gst_object_unref (bus);
  ok = run_to_eos (pipeline, "factory-make");
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  g_print ("factory-make: %u/%u frames %dx%d%s\n", count, frames, WIDTH, HEIGHT,
      wrong_size ? " (some of another size)" : "");
  return ok && count == frames && wrong_size == 0;
}

int
main (int argc, char **argv)
{
  guint frames = argc > 1 ? (guint) strtoul (argv[1], NULL, 10) : 12;
  const char *prompt = argc > 2 ? argv[2] : "an oil painting";
  gboolean parsed, made;

  gst_init (&argc, &argv);
  parsed = run_parse_launch (frames, prompt);
  made = run_factory_make (frames, prompt);
  return parsed && made ? 0 : 1;
}

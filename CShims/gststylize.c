/* The `stylize` element's GObject boilerplate: type, properties, pad templates,
 * plugin_init, and trampolines into Swift (Sources/GstStylize/Entry.swift), where
 * every decision is made. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>

#ifndef PACKAGE
#define PACKAGE "stylize"
#endif
#define STYLIZE_VERSION "0.1.0"
#define STYLIZE_ORIGIN "Unknown package origin"
#define STYLIZE_DESCRIPTION \
  "Restyles video with a distilled diffusion U-Net conditioned on a text prompt"

#include "gststylize.h"
#include "stylize-swift.h"

GST_DEBUG_CATEGORY (stylize_debug);
#define GST_CAT_DEFAULT stylize_debug

#define STYLIZE_FORMATS \
  "{ RGB, BGR, RGBA, BGRA, RGBx, BGRx, xRGB, xBGR, ARGB, ABGR, I420, NV12 }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (STYLIZE_FORMATS)));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (STYLIZE_FORMATS)));

G_DEFINE_TYPE (GstStylize, gst_stylize, GST_TYPE_ELEMENT);

#define STYLIZE(obj) ((GstStylize *) (obj))

/* --- trampolines --- */

static GstFlowReturn
gst_stylize_chain (GstPad * pad, GstObject * parent, GstBuffer * buffer)
{
  return stylize_swift_chain (STYLIZE (parent), buffer);
}

static gboolean
gst_stylize_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  return stylize_swift_sink_event (STYLIZE (parent), event);
}

static gboolean
gst_stylize_sink_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  return stylize_swift_sink_query (STYLIZE (parent), query);
}

static gboolean
gst_stylize_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  return stylize_swift_src_query (STYLIZE (parent), query);
}

static gboolean
gst_stylize_src_activate_mode (GstPad * pad, GstObject * parent,
    GstPadMode mode, gboolean active)
{
  return stylize_swift_src_activate_mode (STYLIZE (parent), mode, active);
}

static GstStateChangeReturn
gst_stylize_change_state (GstElement * element, GstStateChange transition)
{
  return stylize_swift_change_state (STYLIZE (element), transition);
}

GstStateChangeReturn
gst_stylize_parent_change_state (GstStylize * self, GstStateChange transition)
{
  return GST_ELEMENT_CLASS (gst_stylize_parent_class)->change_state
      (GST_ELEMENT (self), transition);
}

static void
gst_stylize_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  if (!stylize_swift_set_property (STYLIZE (object), prop_id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
gst_stylize_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  if (!stylize_swift_get_property (STYLIZE (object), prop_id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
gst_stylize_dispose (GObject * object)
{
  stylize_swift_dispose (STYLIZE (object));
  G_OBJECT_CLASS (gst_stylize_parent_class)->dispose (object);
}

static void
gst_stylize_finalize (GObject * object)
{
  stylize_swift_finalize (STYLIZE (object));
  STYLIZE (object)->impl = NULL;
  G_OBJECT_CLASS (gst_stylize_parent_class)->finalize (object);
}

/* --- class and instance --- */

static void
gst_stylize_class_init (GstStylizeClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_stylize_set_property;
  gobject_class->get_property = gst_stylize_get_property;
  gobject_class->dispose = gst_stylize_dispose;
  gobject_class->finalize = gst_stylize_finalize;

  /* Every property comes from Swift's property table (ElementProperty). */
  stylize_swift_install_properties (gobject_class);

  gst_element_class_set_static_metadata (element_class,
      "Stylize (diffusion video restyling)", "Filter/Effect/Video",
      STYLIZE_DESCRIPTION ", batching frames on the CPU while a side thread "
      "encodes the prompt", "stylize contributors");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_stylize_change_state);
}

static void
gst_stylize_init (GstStylize * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_stylize_chain));
  gst_pad_set_event_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_stylize_sink_event));
  gst_pad_set_query_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_stylize_sink_query));
  GST_PAD_SET_PROXY_CAPS (self->sinkpad);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_query_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_stylize_src_query));
  gst_pad_set_activatemode_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_stylize_src_activate_mode));
  GST_PAD_SET_PROXY_CAPS (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  self->impl = stylize_swift_instance_init (self);
}

/* --- helpers for Swift --- */

GParamFlags
stylize_param_flags (gboolean writable, gboolean mutable_playing)
{
  if (!writable)
    return G_PARAM_READABLE;
  return G_PARAM_READWRITE | (mutable_playing ? GST_PARAM_MUTABLE_PLAYING :
      GST_PARAM_MUTABLE_READY);
}

void
stylize_element_message (GstElement * element, GstMessageType type,
    StylizeErrorDomain domain, gint code, const gchar * text,
    const gchar * debug, const gchar * file, const gchar * function, gint line)
{
  GQuark quark;
  switch (domain) {
    case STYLIZE_ERROR_CORE:
      quark = GST_CORE_ERROR;
      break;
    case STYLIZE_ERROR_LIBRARY:
      quark = GST_LIBRARY_ERROR;
      break;
    case STYLIZE_ERROR_RESOURCE:
      quark = GST_RESOURCE_ERROR;
      break;
    case STYLIZE_ERROR_STREAM:
    default:
      quark = GST_STREAM_ERROR;
      break;
  }
  /* gst_element_message_full takes ownership of text and debug. */
  gst_element_message_full (element, type, quark, code, g_strdup (text),
      g_strdup (debug), file, function, line);
}

gboolean
stylize_log_enabled (GstDebugLevel level)
{
  return stylize_debug != NULL
      && level <= gst_debug_category_get_threshold (stylize_debug);
}

void
stylize_log (GstDebugLevel level, GObject * object, const gchar * file,
    const gchar * function, gint line, const gchar * message)
{
  if (stylize_log_enabled (level))
    gst_debug_log (stylize_debug, level, file, function, line, object, "%s",
        message);
}

void
stylize_structure_set_double (GstStructure * s, const gchar * field,
    gdouble value)
{
  gst_structure_set (s, field, G_TYPE_DOUBLE, value, NULL);
}

void
stylize_structure_set_uint64 (GstStructure * s, const gchar * field,
    guint64 value)
{
  gst_structure_set (s, field, G_TYPE_UINT64, value, NULL);
}

void
stylize_structure_set_string (GstStructure * s, const gchar * field,
    const gchar * value)
{
  gst_structure_set (s, field, G_TYPE_STRING, value, NULL);
}

const gchar *
stylize_module_path (void)
{
  static gsize once = 0;
  static gchar *path = NULL;
  if (g_once_init_enter (&once)) {
    Dl_info info;
    if (dladdr ((void *) &gst_stylize_get_type, &info) && info.dli_fname
        && info.dli_fname[0] != '\0') {
      /* Absolute, but symlinks kept: .build/release is a link into .build/<triple>. */
      if (g_path_is_absolute (info.dli_fname)) {
        path = g_strdup (info.dli_fname);
      } else {
        gchar *cwd = g_get_current_dir ();
        path = g_build_filename (cwd, info.dli_fname, NULL);
        g_free (cwd);
      }
    }
    if (path == NULL) {
      char resolved[PATH_MAX];
      if (realpath ("/proc/self/exe", resolved))
        path = g_strdup (resolved);
    }
    g_once_init_leave (&once, 1);
  }
  return path;
}

/* --- plugin --- */

static gboolean
plugin_init (GstPlugin * plugin)
{
  if (stylize_debug == NULL)
    GST_DEBUG_CATEGORY_INIT (stylize_debug, "stylize", 0,
        "stylize: diffusion video restyling");
  stylize_swift_plugin_init (plugin);
  return gst_element_register (plugin, "stylize", GST_RANK_NONE,
      GST_TYPE_STYLIZE);
}

gboolean
gst_stylize_register_static (void)
{
  static gsize once = 0;
  static gboolean registered = FALSE;
  if (g_once_init_enter (&once)) {
    registered = gst_plugin_register_static (GST_VERSION_MAJOR,
        GST_VERSION_MINOR, "stylize", STYLIZE_DESCRIPTION, plugin_init,
        STYLIZE_VERSION, GST_LICENSE_UNKNOWN, PACKAGE, PACKAGE, STYLIZE_ORIGIN);
    g_once_init_leave (&once, 1);
  }
  return registered;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, stylize,
    STYLIZE_DESCRIPTION, plugin_init, STYLIZE_VERSION, GST_LICENSE_UNKNOWN,
    PACKAGE, STYLIZE_ORIGIN)

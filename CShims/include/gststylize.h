/* The C half of the `stylize` element: GObject type, pads, properties and the few
 * helpers Swift cannot express (GStreamer macros). Every decision is made in Swift
 * (Sources/GstStylize); the functions here only forward. */
#pragma once

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

#define GST_TYPE_STYLIZE (gst_stylize_get_type ())

typedef struct _GstStylize {
  GstElement element;
  GstPad *sinkpad;
  GstPad *srcpad;
  /* Retained Swift object (Unmanaged<StylizeElement>): created in instance_init,
   * released in finalize. Only Swift reads it. */
  void *impl;
} GstStylize;

typedef struct _GstStylizeClass {
  GstElementClass parent_class;
} GstStylizeClass;

GType gst_stylize_get_type (void);

/* Registers the plugin (and so the `stylize` factory) in the calling process without
 * a plugin file: for apps and tests that link the element statically. Idempotent. */
gboolean gst_stylize_register_static (void);

/* GParamFlags of a property that may change in any state / only in NULL and READY
 * (GST_PARAM_MUTABLE_* are macros). */
GParamFlags stylize_param_flags (gboolean writable, gboolean mutable_playing);

/* --- helpers for what Swift cannot call (macros, varargs) --- */

/* Chains up to GstElement's change_state (pad (de)activation happens there). */
GstStateChangeReturn gst_stylize_parent_change_state (GstStylize * self,
    GstStateChange transition);

/* GST_ELEMENT_ERROR / GST_ELEMENT_WARNING. `domain`: one of the values below. */
typedef enum {
  STYLIZE_ERROR_CORE,
  STYLIZE_ERROR_LIBRARY,
  STYLIZE_ERROR_RESOURCE,
  STYLIZE_ERROR_STREAM,
} StylizeErrorDomain;
void stylize_element_message (GstElement * element, GstMessageType type,
    StylizeErrorDomain domain, gint code, const gchar * text,
    const gchar * debug, const gchar * file, const gchar * function, gint line);

/* GST_CAT_LEVEL_LOG on the `stylize` category. */
gboolean stylize_log_enabled (GstDebugLevel level);
void stylize_log (GstDebugLevel level, GObject * object, const gchar * file,
    const gchar * function, gint line, const gchar * message);

/* gst_structure_set for one field (the C function is varargs). */
void stylize_structure_set_double (GstStructure * s, const gchar * field,
    gdouble value);
void stylize_structure_set_uint64 (GstStructure * s, const gchar * field,
    guint64 value);
void stylize_structure_set_string (GstStructure * s, const gchar * field,
    const gchar * value);

/* Absolute path of the shared object (or executable) that contains the element, as
 * it was loaded (symlinks not resolved), for the default model folder; NULL if
 * unknown. Owned by the shim (do not free). */
const gchar *stylize_module_path (void);

G_END_DECLS

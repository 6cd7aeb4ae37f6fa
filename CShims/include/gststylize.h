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

/* Property ids, shared with Swift. */
typedef enum {
  STYLIZE_PROP_0,
  STYLIZE_PROP_MODEL,
  STYLIZE_PROP_PROMPT,
  STYLIZE_PROP_BATCH_SIZE,
  STYLIZE_PROP_STEPS,
  STYLIZE_PROP_STRENGTH,
  STYLIZE_PROP_SEED,
  STYLIZE_PROP_FIXED_NOISE,
  STYLIZE_PROP_REFRESH_INTERVAL,
  STYLIZE_PROP_MAX_BATCH_WAIT,
  STYLIZE_PROP_SIMILARITY_SKIP,
  STYLIZE_PROP_THREADS,
  STYLIZE_PROP_STATS,
} StylizeProperty;

/* Ranges and defaults, one place for class_init (C) and Settings (Swift). */
#define STYLIZE_BATCH_SIZE_MIN 1
#define STYLIZE_BATCH_SIZE_MAX 64
#define STYLIZE_BATCH_SIZE_DEFAULT 8
#define STYLIZE_STEPS_MIN 1
#define STYLIZE_STEPS_MAX 8
#define STYLIZE_STEPS_DEFAULT 1
#define STYLIZE_STRENGTH_DEFAULT 0.5
#define STYLIZE_SEED_DEFAULT 0
#define STYLIZE_FIXED_NOISE_DEFAULT TRUE
#define STYLIZE_REFRESH_INTERVAL_MAX 10000
#define STYLIZE_REFRESH_INTERVAL_DEFAULT 30
#define STYLIZE_MAX_BATCH_WAIT_MAX 60000
#define STYLIZE_MAX_BATCH_WAIT_DEFAULT 0
#define STYLIZE_SIMILARITY_SKIP_DEFAULT 0.0
#define STYLIZE_THREADS_MAX 64
#define STYLIZE_THREADS_DEFAULT 0

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

/* Entry points implemented in Swift with @_cdecl (Sources/GstStylize/Entry.swift).
 * Private to the shim: Swift does not import this header. */
#pragma once

#include "gststylize.h"

void *stylize_swift_instance_init (GstStylize * self);
void stylize_swift_dispose (GstStylize * self);
void stylize_swift_finalize (GstStylize * self);
void stylize_swift_install_properties (GObjectClass * klass);
void stylize_swift_plugin_init (GstPlugin * plugin);

GstFlowReturn stylize_swift_chain (GstStylize * self, GstBuffer * buffer);
gboolean stylize_swift_sink_event (GstStylize * self, GstEvent * event);
gboolean stylize_swift_sink_query (GstStylize * self, GstQuery * query);
gboolean stylize_swift_src_query (GstStylize * self, GstQuery * query);
gboolean stylize_swift_src_activate_mode (GstStylize * self, GstPadMode mode,
    gboolean active);
GstStateChangeReturn stylize_swift_change_state (GstStylize * self,
    GstStateChange transition);
/* FALSE: not one of the element's property ids. */
gboolean stylize_swift_set_property (GstStylize * self, guint prop_id,
    const GValue * value);
gboolean stylize_swift_get_property (GstStylize * self, guint prop_id,
    GValue * value);

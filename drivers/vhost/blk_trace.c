// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-blk tracepoints: the one place that instantiates blk_trace.h.
 */
#define CREATE_TRACE_POINTS
#include "blk_trace.h"

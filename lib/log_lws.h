/*
 * libwebsockets' own lines, into our log: one hook for the broker and the
 * client.  (Apart from log.c so that the edge, which has no libwebsockets,
 * does not link it.)
 */
#ifndef EXPOSE_LOG_LWS_H
#define EXPOSE_LOG_LWS_H

#include "log.h"

/* Takes libwebsockets' lines of lws_levels (LLL_ERR | ...), logged at their
 * own level (error or warning) but never above floor: LOG_DEBUG keeps
 * them out of sight unless -v. */
void log_lws(int lws_levels, enum log_level floor);

#endif

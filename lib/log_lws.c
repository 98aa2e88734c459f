#include "log_lws.h"

#include <stdio.h>
#include <string.h>

#include <libwebsockets.h>

/* A libwebsockets line longer than this is cut. */
#define LWS_LINE_BYTES 512

static enum log_level lws_floor = LOG_DEBUG;

static void
emit(int level, const char *line)
{
	enum log_level l = level == LLL_ERR ? LOG_ERR : LOG_WARN;
	char copy[LWS_LINE_BYTES];

	snprintf(copy, sizeof copy, "%s", line);
	copy[strcspn(copy, "\n")] = '\0';
	log_msg(l > lws_floor ? l : lws_floor, "lws: %s", copy);
}

void
log_lws(int lws_levels, enum log_level floor)
{
	lws_floor = floor;
	lws_set_log_level(lws_levels, emit);
}

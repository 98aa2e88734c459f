/*
 * The broker's tick, from its event loop: systemd's watchdog ping, the
 * STATUS= line, heap trims, name sweeps and certificate renewals.  A stuck
 * loop stops the pings, and systemd restarts the broker.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"

/* malloc_trim once clients fall to a quarter of a peak of at least this many. */
#define TRIM_PEAK_SESSIONS 256
#define TRIM_FALL_FACTOR 4

/* STATUS= for systemctl status, when the counts change. */
static void
tell_status(struct broker *b)
{
	char status[64], msg[80];

	snprintf(status, sizeof status, "%u tunnels, %u clients, %u streams", b->ntunnels,
	         b->nsessions, b->nstreams);
	if (strcmp(status, b->status) == 0)
		return;
	snprintf(b->status, sizeof b->status, "%s", status);
	snprintf(msg, sizeof msg, "STATUS=%s", status);
	sock_notify(msg);
}

/* After many clients leave, free heap at the top stays mapped: hand it back
 * once the count has fallen well below its peak. */
static void
trim_memory(struct broker *b)
{
	if (b->nsessions > b->peak_sessions)
		b->peak_sessions = b->nsessions;
	if (b->peak_sessions >= TRIM_PEAK_SESSIONS &&
	    b->nsessions <= b->peak_sessions / TRIM_FALL_FACTOR) {
		malloc_trim(0);
		b->peak_sessions = b->nsessions;
	}
}

/* From the event loop itself: a stuck loop stops the pings and systemd
 * restarts the broker. */
static void
watchdog_tick(lws_sorted_usec_list_t *sul)
{
	struct broker *b = lws_container_of(sul, struct broker, watchdog);

	sock_notify("WATCHDOG=1");
	tell_status(b);
	trim_memory(b);
	access_sweep_names(b);
	if (b->cfg->set.cert[0])
		cert_reload(b);
	lws_sul_schedule(b->ctx, 0, &b->watchdog, watchdog_tick, b->watchdog_us);
}

void
watchdog_start(struct broker *b)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	long long us = usec ? strtoll(usec, NULL, 10) : 0;

	if (pid && strtol(pid, NULL, 10) != (long)getpid())
		us = 0;
	/* The tick also carries STATUS=, certificate reloads, heap trims and
	 * name sweeps: once a second, or at half the watchdog if that is
	 * shorter.  Pinging systemd more often than it asks is harmless. */
	b->watchdog_us = us > 0 && us / 2 < LWS_US_PER_SEC ? (lws_usec_t)us / 2 : LWS_US_PER_SEC;
	lws_sul_schedule(b->ctx, 0, &b->watchdog, watchdog_tick, b->watchdog_us);
}

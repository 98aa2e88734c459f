/*
 * The broker's event loop: libev on epoll, which libwebsockets runs on as
 * a foreign loop (its libev plugin, libwebsockets-evlib_ev.so, dlopened
 * from the library directory at lws_create_context).  lws's own poll()
 * loop cost every wakeup a pass over every descriptor, so each idle
 * client or edge connection slowed every request; epoll costs what is
 * ready.
 *
 * Besides lws's watchers the loop holds the broker's own:
 *   - SIGTERM, SIGINT: stop (ev_break; main then shuts down);
 *   - SIGHUP: read expose.conf again (broker_reload);
 *   - a prepare watcher, before each wait for events: the cluster
 *     thread's finished jobs (cluster_poll), then broker_flush, so the
 *     frames a turn queued for a websocket go out in one write.
 * Timers (pings, deadlines, the watchdog tick) are lws_sul_*, which lws
 * drives from an ev_timer of its own and services after every wakeup
 * that reached one of its sockets.  lws 4.1 does not bring that ev_timer
 * forward when a timer due sooner is set, so such a timer (an async kill
 * set by broker_flush after a failed write, say) runs at lws's next
 * wakeup: at the latest the watchdog tick (watchdog.c, 1 s at most).
 */
#include <signal.h>

#include <ev.h>

#include "broker.h"
#include "cluster.h"
#include "conf.h"
#include "log.h"

/* The broker's watchers; one loop per process. */
static struct {
	struct ev_signal term, intr, hup;
	struct ev_prepare turn;
} w;

static void
on_stop(struct ev_loop *loop, struct ev_signal *sig, int revents)
{
	struct broker *b = sig->data;

	b->stopping = 1;
	ev_break(loop, EVBREAK_ALL);
}

static void
on_hangup(struct ev_loop *loop, struct ev_signal *sig, int revents)
{
	char msg[CONF_ERROR_BYTES + 128];

	broker_reload(sig->data, msg, sizeof msg);
}

/* After every turn's callbacks, before the loop waits again. */
static void
on_turn(struct ev_loop *loop, struct ev_prepare *p, int revents)
{
	struct broker *b = p->data;

	cluster_poll(b);
	broker_flush(b);
}

static void
signal_watch(struct broker *b, struct ev_signal *sig, int signum,
             void (*cb)(struct ev_loop *, struct ev_signal *, int))
{
	ev_signal_init(sig, cb, signum);
	sig->data = b;
	ev_signal_start(b->loop, sig);
}

int
loop_open(struct broker *b)
{
	/* epoll, and no LIBEV_FLAGS from the environment choosing another. */
	b->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (b->loop == NULL) {
		log_err("cannot create the event loop (libev on epoll)");
		return -1;
	}
	signal_watch(b, &w.term, SIGTERM, on_stop);
	signal_watch(b, &w.intr, SIGINT, on_stop);
	signal_watch(b, &w.hup, SIGHUP, on_hangup);
	ev_prepare_init(&w.turn, on_turn);
	w.turn.data = b;
	ev_prepare_start(b->loop, &w.turn);
	return 0;
}

void
loop_run(struct broker *b)
{
	if (!b->stopping)
		ev_run(b->loop, 0);
}

void
loop_close(struct broker *b)
{
	if (b->loop == NULL)
		return;
	ev_prepare_stop(b->loop, &w.turn);
	ev_signal_stop(b->loop, &w.term);
	ev_signal_stop(b->loop, &w.intr);
	ev_signal_stop(b->loop, &w.hup);
	ev_loop_destroy(b->loop);
	b->loop = NULL;
	/* libev gave them back their default, which would kill the rest of
	 * the shutdown (the registry rows not yet deleted). */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
}

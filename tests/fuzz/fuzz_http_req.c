/*
 * The edge's request parser on any bytes: no sanitizer report, and the
 * same verdict and the same bytes out whether the input arrives whole or
 * split at points the fuzzer picks (the edge reads sockets in pieces).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_req.h"

#define OUT_MAX (1 << 20)

struct result {
	int status;
	int heads;
	struct buf out;
};

/* Feeds the input in pieces the way the edge does: unconsumed bytes wait
 * in a buffer and are offered again with the next piece. */
static void
parse(const uint8_t *data, size_t len, const size_t *cuts, size_t ncuts, struct result *r)
{
	struct http_req req;
	struct buf in;
	size_t off = 0, end, used, c;
	enum http_req_event ev;

	memset(r, 0, sizeof *r);
	buf_init(&r->out, OUT_MAX);
	buf_init(&in, 1 << 20);
	http_req_init(&req, NULL);
	for (c = 0; off < len; c++) {
		end = c < ncuts && cuts[c] > off && cuts[c] < len ? cuts[c] : len;
		buf_append(&in, data + off, end - off);
		off = end;
		for (;;) {
			ev = http_req_feed(&req, buf_data(&in), buf_len(&in), &used, &r->out);
			buf_consume(&in, used);
			if (ev == HTTP_REQ_HEAD) {
				r->heads++;
				if (http_req_emit_head(&req, &r->out, "192.0.2.1", "http") == -1)
					abort();
				continue;
			}
			if (ev == HTTP_REQ_ERROR) {
				r->status = req.status;
				goto done;
			}
			if (ev == HTTP_REQ_UPGRADE)
				goto done;
			if (ev == HTTP_REQ_MORE)
				break;
		}
	}
done:
	buf_free(&in);
	http_req_free(&req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result whole, split;
	size_t cuts[3], i, n = 0;

	if (size < 4)
		return 0;
	/* The first bytes say where to cut the rest, in order. */
	data += 3;
	size -= 3;
	for (i = 0; i < 3; i++) {
		size_t cut = data[(int)i - 3] * size / 256;
		if (n == 0 || cut > cuts[n - 1])
			cuts[n++] = cut;
	}
	parse(data, size, NULL, 0, &whole);
	parse(data, size, cuts, n, &split);
	if (whole.status != split.status || whole.heads != split.heads ||
	    buf_len(&whole.out) != buf_len(&split.out) ||
	    memcmp(buf_data(&whole.out), buf_data(&split.out), buf_len(&whole.out)) != 0)
		abort();    /* the verdict depends on how bytes arrive */
	buf_free(&whole.out);
	buf_free(&split.out);
	return 0;
}

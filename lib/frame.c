#include "frame.h"

#include <string.h>

#include "bounds.h"

const char *
frame_code_name(enum frame_code code)
{
	static const char *const names[] = {
		[CODE_OK] = "ok",
		[CODE_REFUSED] = "refused",
		[CODE_CLOSED] = "closed",
		[CODE_PROTOCOL] = "protocol error",
		[CODE_LIMIT] = "limit reached",
		[CODE_NAME_INVALID] = "name invalid",
		[CODE_NAME_TAKEN] = "name taken",
		[CODE_NAME_DENIED] = "name denied",
		[CODE_AUTH] = "not authorized",
		[CODE_INTERNAL] = "internal error",
		[CODE_TIMEOUT] = "timeout",
		[CODE_KICKED] = "kicked",
		[CODE_REPLACED] = "replaced",
	};

	if ((size_t)code >= sizeof names / sizeof names[0] || !names[code])
		return "unknown";
	return names[code];
}

const char *
frame_type_name(uint8_t type)
{
	switch (type) {
	case FRAME_CHALLENGE: return "CHALLENGE";
	case FRAME_AUTH: return "AUTH";
	case FRAME_BIND: return "BIND";
	case FRAME_BOUND: return "BOUND";
	case FRAME_ERROR: return "ERROR";
	case FRAME_OPEN: return "OPEN";
	case FRAME_DATA: return "DATA";
	case FRAME_FIN: return "FIN";
	case FRAME_RST: return "RST";
	case FRAME_WINDOW: return "WINDOW";
	}
	return "unknown";
}

void
frame_header(uint8_t *out, uint8_t type, uint32_t stream, size_t len)
{
	out[0] = type;
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	frame_put32(out + 4, stream);
}

int
frame_append(struct buf *b, uint8_t type, uint32_t stream,
             const void *payload, size_t len)
{
	uint8_t *p;

	if (len > FRAME_PAYLOAD_MAX_BYTES)
		return -1;
	p = buf_reserve(b, FRAME_HEADER_BYTES + len);
	if (p == NULL)
		return -1;
	frame_header(p, type, stream, len);
	if (len)
		memcpy(p + FRAME_HEADER_BYTES, payload, len);
	buf_commit(b, FRAME_HEADER_BYTES + len);
	return 0;
}

void
frame_decoder_init(struct frame_decoder *d)
{
	memset(d, 0, sizeof *d);
	buf_init(&d->control, FRAME_CONTROL_MAX_BYTES);
}

void
frame_decoder_free(struct frame_decoder *d)
{
	buf_free(&d->control);
}

/* Takes a complete header: checks it and sets up the payload. */
static int
frame_start(struct frame_decoder *d)
{
	d->type = d->hdr[0];
	d->remaining = (size_t)d->hdr[1] << 16 | (size_t)d->hdr[2] << 8 | d->hdr[3];
	d->stream = frame_get32(d->hdr + 4);
	d->hdr_len = 0;
	if (d->type == FRAME_DATA) {
		if (d->remaining > FRAME_PAYLOAD_MAX_BYTES) {
			d->error = "data frame too large";
			return -1;
		}
		return 0;
	}
	if (d->remaining > FRAME_CONTROL_MAX_BYTES) {
		d->error = "control frame too large";
		return -1;
	}
	buf_consume(&d->control, buf_len(&d->control));
	return 0;
}

int
frame_feed(struct frame_decoder *d, const uint8_t *p, size_t n,
           const struct frame_handlers *h, void *ctx)
{
	size_t take;

	while (n > 0) {
		if (d->remaining == 0) {
			/* Between frames: collect a header. */
			take = FRAME_HEADER_BYTES - d->hdr_len;
			if (take > n)
				take = n;
			memcpy(d->hdr + d->hdr_len, p, take);
			d->hdr_len += take;
			p += take;
			n -= take;
			if (d->hdr_len < FRAME_HEADER_BYTES)
				return 0;
			if (frame_start(d) == -1)
				return -1;
		}
		take = d->remaining < n ? d->remaining : n;
		if (d->type == FRAME_DATA) {
			if (take && h->data(ctx, d->stream, p, take) == -1)
				goto refused;
		} else if (buf_append(&d->control, p, take) == -1) {
			d->error = "control frame too large";
			return -1;
		}
		p += take;
		n -= take;
		d->remaining -= take;
		if (d->remaining > 0)
			return 0;
		if (d->type != FRAME_DATA &&
		    h->control(ctx, d->type, d->stream, buf_data(&d->control),
		               buf_len(&d->control)) == -1)
			goto refused;
	}
	return 0;
refused:
	if (d->error == NULL)
		d->error = "frame refused";
	return -1;
}

#include "page.h"

#include "bounds.h"

#include <stdio.h>
#include <string.h>

/* Longest page body: the detail is short text. */
#define PAGE_MAX_BYTES 2048
/* The head of an error page without its extra lines. */
#define PAGE_HEAD_BYTES 512

const char *
page_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 202: return "Accepted";
	case 301: return "Moved Permanently";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	}
	return "Error";
}

/* HTML-escapes s into out[size]. */
static void
escape(char *out, size_t size, const char *s)
{
	size_t n = 0;
	const char *rep;

	for (; *s && n + 7 < size; s++) {
		switch (*s) {
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '&': rep = "&amp;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default:
			out[n++] = (unsigned char)*s < 0x20 ? '?' : *s;
			continue;
		}
		memcpy(out + n, rep, strlen(rep));
		n += strlen(rep);
	}
	out[n] = '\0';
}

int
page_error(struct buf *out, int status, const char *detail, const char *extra)
{
	char body[PAGE_MAX_BYTES], esc[PAGE_MAX_BYTES / 2];
	char head[PAGE_HEAD_BYTES + PAGE_EXTRA_MAX_BYTES];
	const char *reason = page_reason(status);
	int blen, hlen;

	escape(esc, sizeof esc, detail ? detail : "");
	blen = snprintf(body, sizeof body,
	        "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
	        "<title>%d %s</title></head>\n<body><h1>%d %s</h1>\n<p>%s</p>\n"
	        "<hr><p>expose</p></body></html>\n",
	        status, reason, status, reason, esc);
	if (blen < 0 || (size_t)blen >= sizeof body)
		return -1;
	hlen = snprintf(head, sizeof head,
	        "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
	        "Content-Length: %d\r\nCache-Control: no-store\r\n"
	        "X-Content-Type-Options: nosniff\r\n%sConnection: close\r\n\r\n",
	        status, reason, blen, extra ? extra : "");
	if (hlen < 0 || (size_t)hlen >= sizeof head)
		return -1;
	if (buf_room(out) < (size_t)(hlen + blen))
		return -1;
	buf_append(out, head, (size_t)hlen);
	buf_append(out, body, (size_t)blen);
	return 0;
}

/*
 * The responses the edge writes itself: a status, a short HTML page that
 * says what happened and what to do, and Connection: close.
 */
#ifndef EXPOSE_PAGE_H
#define EXPOSE_PAGE_H

#include "buf.h"

const char *page_reason(int status);
/* Appends the whole response.  detail is escaped; extra is raw header
 * lines ("Retry-After: 1\r\n") or NULL.  -1 if out has no room. */
int page_error(struct buf *out, int status, const char *detail,
               const char *extra);

#endif

/* The copies the mirror holds back (held.h). */
#include "held.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

static int
find(const struct held *h, const char *name)
{
	int i;

	for (i = 0; i < h->n; i++)
		if (strcmp(h->c[i].name, name) == 0)
			return i;
	return -1;
}

void
held_keep(struct held *h, const char *name, const char *value)
{
	int i = find(h, name);
	char *copy;

	if (strlen(name) >= sizeof h->c[0].name || (copy = strdup(value)) == NULL)
		return;
	if (i == -1 && h->c == NULL &&
	    (h->c = calloc(MIRROR_HELD_MAX, sizeof *h->c)) == NULL) {
		free(copy);
		return;
	}
	if (i == -1 && h->n == MIRROR_HELD_MAX) {
		if (!h->full)
			log_warn("more than %d copies wait for rows of this host's broker to go; "
			         "%s is not copied until the next resync", MIRROR_HELD_MAX, name);
		h->full = true;
		free(copy);
		return;
	}
	if (i == -1) {
		i = h->n++;
		strcpy(h->c[i].name, name);
	} else {
		free(h->c[i].value);
	}
	h->c[i].value = copy;
}

void
held_forget(struct held *h, const char *name)
{
	int i = find(h, name);

	if (i == -1)
		return;
	free(h->c[i].value);
	h->c[i] = h->c[--h->n];
}

void
held_clear(struct held *h)
{
	while (h->n > 0)
		free(h->c[--h->n].value);
	free(h->c);
	h->c = NULL;
	h->full = false;
}

/* The edge<->broker preamble: both sides' parsers, on any line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "preamble.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[PREAMBLE_MAX_BYTES + 1], again[PREAMBLE_MAX_BYTES];
	struct preamble_ask ask;
	struct preamble_answer answer;

	if (size > PREAMBLE_MAX_BYTES)
		size = PREAMBLE_MAX_BYTES;
	memcpy(line, data, size);
	line[size] = '\0';
	if (preamble_ask_parse(line, &ask) == 0 &&
	    (ask.name[0] == '\0' || ask.addr[0] == '\0' || strchr(ask.name, ' ') ||
	     strncmp(ask.peer, ask.addr, strlen(ask.addr)) != 0))
		abort();    /* a parsed ask always names a tunnel and a source */
	if (preamble_answer_parse(line, &answer) == 0 && answer.kind == PREAMBLE_ERR &&
	    preamble_answer_format(again, sizeof again, answer.kind, answer.code,
	                           answer.seconds, answer.detail) == -1)
		abort();    /* whatever was read can be said again */
	return 0;
}

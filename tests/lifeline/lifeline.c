/*
 * lifeline PROGRAM [ARG...]: runs PROGRAM under the parent-death signal
 * that EXPOSE_LIFELINE asks for (lib/lifeline.h).  The test harness
 * starts programs that are not expose's own (node, the socket launcher)
 * through it, so that they too die with a killed test run.
 */
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include "lifeline.h"

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: lifeline PROGRAM [ARG...]\n");
		return 64;
	}
	lifeline_from_env();
	execvp(argv[1], argv + 1);
	fprintf(stderr, "lifeline: %s: %s\n", argv[1], strerror(errno));
	return 127;
}

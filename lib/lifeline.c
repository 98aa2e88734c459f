/*
 * The parent-death signal behind EXPOSE_LIFELINE (lifeline.h).
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "lifeline.h"

#define LIFELINE_ENV "EXPOSE_LIFELINE"

void
lifeline_from_env(void)
{
	const char *v = getenv(LIFELINE_ENV);
	char *end;
	long pid;

	if (v == NULL || *v == '\0')
		return;
	pid = strtol(v, &end, 10);
	/* Not inherited: a program this one starts has another parent. */
	unsetenv(LIFELINE_ENV);
	if (*end != '\0' || pid <= 1)
		return;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		return;
	/* The parent may have gone between fork and here. */
	if (getppid() != (pid_t)pid)
		_exit(1);
}

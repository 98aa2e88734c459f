/*
 * Lifeline: a supervisor that is not systemd (the test harness, a script)
 * may ask a program to die with it.  EXPOSE_LIFELINE=PID in the
 * environment, with PID the parent that started the program, sets
 * PR_SET_PDEATHSIG to SIGKILL, so nothing outlives a killed test run.
 * Doing it here, not in a wrapper or a pre-exec hook, keeps the parent's
 * spawn a plain vfork and exec.
 */
#ifndef EXPOSE_LIFELINE_H
#define EXPOSE_LIFELINE_H

/* Call first in main().  Without the variable it does nothing; with it,
 * it exits at once if that parent is gone already. */
void lifeline_from_env(void);

#endif

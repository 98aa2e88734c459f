/* exposectl's commands: each returns the exit status. */
#ifndef EXPOSECTL_CTL_H
#define EXPOSECTL_CTL_H

#include <sysexits.h>

#include "settings.h"


/* stored.c: the registry and authorized_keys */
int ctl_list(const struct settings *s, char **argv);
int ctl_names(const struct settings *s, char **argv);
int ctl_keys(const struct settings *s, char **argv);
int ctl_reserve(const struct settings *s, char **argv);
int ctl_release(const struct settings *s, char **argv);
int ctl_rotate_tickets(const struct settings *s, char **argv);

/* live.c: the running broker */
int ctl_kick(const struct settings *s, char **argv);
int ctl_reload(const struct settings *s, char **argv);
int ctl_stats(const struct settings *s, char **argv);
int ctl_metrics(const struct settings *s, char **argv);

#endif

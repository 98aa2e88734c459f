/* The config parser and the settings table on any text. */
#include <stdint.h>

#include "conf.h"
#include "settings.h"

static int
set(void *ctx, const char *key, const char *value, char *why, size_t size)
{
	return settings_set(ctx, key, value, why, size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct settings s;
	char err[CONF_ERROR_BYTES];

	settings_defaults(&s);
	(void)conf_parse((const char *)data, size, "fuzz.conf", set, &s, err, sizeof err);
	return 0;
}

/* Host values: validation and the tunnel name they give. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "name.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[NAME_MAX_BYTES + 1];

	if (host_parse((const char *)data, size, "example.com", name, sizeof name) == HOST_OK &&
	    (strlen(name) == 0 || strchr(name, '.') != NULL))
		abort();    /* a routed name is one non-empty label */
	(void)host_same((const char *)data, size, "a.example.com:80", 16, 80);
	return 0;
}

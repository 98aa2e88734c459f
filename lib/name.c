#include "name.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

static const char *const adjectives[64] = {
	"amber", "bold", "brave", "bright", "brisk", "calm", "clever", "cool",
	"crisp", "curly", "daring", "deep", "eager", "early", "fancy", "fast",
	"fuzzy", "gentle", "glad", "golden", "grand", "happy", "hardy", "honest",
	"humble", "jolly", "keen", "kind", "lively", "lucky", "mellow", "merry",
	"mighty", "misty", "modest", "neat", "noble", "odd", "plucky", "polite",
	"proud", "quick", "quiet", "rapid", "ready", "rosy", "rustic", "sandy",
	"shiny", "silent", "silver", "sleek", "smart", "snowy", "sunny", "swift",
	"tidy", "tiny", "vivid", "warm", "wild", "wise", "witty", "zesty",
};

static const char *const nouns[64] = {
	"badger", "bear", "beaver", "bison", "crane", "crow", "deer", "dingo",
	"dolphin", "eagle", "falcon", "ferret", "finch", "fox", "gecko", "goose",
	"hare", "hawk", "heron", "ibis", "jackal", "jaguar", "koala", "lark",
	"lemur", "lion", "llama", "lynx", "marten", "mole", "moose", "newt",
	"ocelot", "orca", "osprey", "otter", "owl", "panda", "panther", "parrot",
	"pelican", "puffin", "quail", "rabbit", "raven", "robin", "salmon", "seal",
	"shark", "sparrow", "stork", "swan", "tapir", "tiger", "toucan", "trout",
	"turtle", "viper", "walrus", "weasel", "whale", "wolf", "wombat", "yak",
};

/* base32 without 0, 1, l, o, i: no two characters look alike. */
static const char suffix_alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";
#define SUFFIX_CHARS 11

const char *
name_invalid_reason(const char *name)
{
	size_t n = strlen(name), i;

	if (n == 0)
		return "empty";
	if (n > NAME_MAX_BYTES)
		return "longer than 63 characters";
	if (name[0] == '-' || name[n - 1] == '-')
		return "starts or ends with a hyphen";
	for (i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return "only a-z, 0-9 and '-' are allowed";
	}
	if (n >= 4 && name[2] == '-' && name[3] == '-')
		return "'--' at the third and fourth characters is reserved";
	return NULL;
}

int
name_is_valid(const char *name)
{
	return name_invalid_reason(name) == NULL;
}

void
name_random(char out[NAME_RANDOM_BYTES])
{
	char suffix[SUFFIX_CHARS + 1];
	size_t i, alphabet = sizeof suffix_alphabet - 1;

	for (i = 0; i < SUFFIX_CHARS; i++)
		suffix[i] = suffix_alphabet[randombytes_uniform((uint32_t)alphabet)];
	suffix[SUFFIX_CHARS] = '\0';
	snprintf(out, NAME_RANDOM_BYTES, "%s-%s-%s",
	         adjectives[randombytes_uniform(64)], nouns[randombytes_uniform(64)],
	         suffix);
}

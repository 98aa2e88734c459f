#include <stdio.h>
#include <time.h>

#include "clock.h"

#define SECONDS_PER_DAY 86400
#define DAYS_PER_ERA 146097       /* 400 Gregorian years */
#define DAYS_EPOCH_FROM_ERA 719468 /* 1970-01-01 from 0000-03-01 */

int64_t
clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The civil date of a day count, by eras of 400 years from 0000-03-01. */
void
clock_utc_text(time_t now, char *out, size_t size)
{
	long long days = now / SECONDS_PER_DAY, secs = now % SECONDS_PER_DAY;
	long long era, doe, yoe, doy, mp, year;
	int month, day;

	if (secs < 0) {
		secs += SECONDS_PER_DAY;
		days--;
	}
	days += DAYS_EPOCH_FROM_ERA;
	era = (days >= 0 ? days : days - (DAYS_PER_ERA - 1)) / DAYS_PER_ERA;
	doe = days - era * DAYS_PER_ERA;
	/* The year of the era: 365 days a year, less the leap days of every
	 * 4 (1460 days), 100 (36524) and 400 years. */
	yoe = (doe - doe / 1460 + doe / 36524 - doe / (DAYS_PER_ERA - 1)) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	day = (int)(doy - (153 * mp + 2) / 5 + 1);
	month = (int)(mp < 10 ? mp + 3 : mp - 9);
	year = yoe + era * 400 + (month <= 2);
	snprintf(out, size, "%04lld-%02d-%02dT%02lld:%02lld:%02lldZ", year, month, day,
	         secs / 3600, secs / 60 % 60, secs % 60);
}

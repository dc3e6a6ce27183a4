/*
 * main.c - runs every unit suite of the pure-C core and prints "N passed, N failed".
 *
 * A suite is a function `void suite_<name>(void)` that calls RUN(test) for each of its tests;
 * add new suites to the list below.
 */
#include "unit.h"

#include <stdlib.h>

int unit_failed_checks = 0;
static int passed = 0, failed = 0;

void
unit_run(const char *name, void (*fn)(void))
{
	int before = unit_failed_checks;

	fn();
	if (unit_failed_checks == before) {
		passed++;
		printf("ok - %s\n", name);
	} else {
		failed++;
		printf("not ok - %s\n", name);
	}
}

#define SUITES(X)                                                                                  \
	X(nn)                                                                                          \
	X(gru) X(models) X(format) X(fixtures) X(lstm) X(session) X(transformer) X(metrics) X(interrupt)

#define DECLARE(name) void suite_##name(void);
SUITES(DECLARE)

int
main(void)
{
#define CALL(name) suite_##name();
	SUITES(CALL)
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * arch.c - the one table of architecture names.
 */
#include "arch.h"

#include <string.h>

static const char *const names[] = {
    [DIN_ARCH_BASE] = "base", [DIN_ARCH_DIN] = "din", [DIN_ARCH_DIEN] = "dien",
    [DIN_ARCH_DSIN] = "dsin", [DIN_ARCH_BST] = "bst",
};

#define N_ARCH ((int)(sizeof(names) / sizeof(names[0])))

const char *
din_arch_name(DinArch arch)
{
	return (int)arch >= 0 && (int)arch < N_ARCH ? names[arch] : "unknown";
}

int
din_arch_from_name(const char *name, DinArch *arch)
{
	for (int a = 0; a < N_ARCH; a++)
		if (strcmp(name, names[a]) == 0) {
			*arch = (DinArch)a;
			return 1;
		}
	return 0;
}

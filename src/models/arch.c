/*
 * arch.c - the architectures din scores, indexed by DinArch (see arch.h).
 */
#include "arch.h"

#include <string.h>

static const DinArchOps *const archs[] = {
    [DIN_ARCH_BASE] = &din_ops_base, [DIN_ARCH_DIN] = &din_ops_din, [DIN_ARCH_DIEN] = &din_ops_dien,
    [DIN_ARCH_DSIN] = &din_ops_dsin, [DIN_ARCH_BST] = &din_ops_bst,
};

#define N_ARCHS ((int)(sizeof(archs) / sizeof(archs[0])))

const char *
din_arch_name(DinArch arch)
{
	return (int)arch >= 0 && (int)arch < N_ARCHS ? archs[arch]->name : NULL;
}

int
din_arch_from_name(const char *name, DinArch *arch)
{
	for (int i = 0; i < N_ARCHS; i++)
		if (strcmp(archs[i]->name, name) == 0) {
			*arch = (DinArch)i;
			return 1;
		}
	return 0;
}

const DinArchOps *
din_arch_ops(const DinModel *m)
{
	return archs[m->arch];
}

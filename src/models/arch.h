/*
 * arch.h - the names of the architectures, as a config's `architecture` key and the
 * din_models.architecture column spell them (docs/FORMAT.md "The config").
 */
#ifndef DIN_ARCH_H
#define DIN_ARCH_H

#include "model.h"

/* din_arch_name - "base", "din", "dien", "dsin" or "bst". */
const char *din_arch_name(DinArch arch);

/* din_arch_from_name - 1 and *arch when name is an architecture's name, else 0. */
int din_arch_from_name(const char *name, DinArch *arch);

#endif

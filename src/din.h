/*
 * din.h - backend-wide settings of the din extension.
 */
#ifndef DIN_H
#define DIN_H

/* din.default_model: the model din_score uses when its model argument is NULL ("" = none). */
extern char *din_default_model;

/* din.allow_drop_models: DROP EXTENSION din may drop stored models with it (drop_guard.c). */
extern bool din_allow_drop_models;

#endif

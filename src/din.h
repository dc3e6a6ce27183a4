/*
 * din.h - backend-wide settings of the din extension.
 */
#ifndef DIN_H
#define DIN_H

/* din.default_model: the model din_score uses when its model argument is NULL ("" = none). */
extern char *din_default_model;

#endif

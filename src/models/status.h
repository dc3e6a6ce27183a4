/*
 * status.h - error reporting of the pure-C layers that can fail (models, format); the nn
 * kernels below them cannot.
 *
 * The pure core never longjmps and never prints: a failing call fills a DinError and
 * returns its code; the PostgreSQL glue turns the code into a SQLSTATE and reports it.
 */
#ifndef DIN_STATUS_H
#define DIN_STATUS_H

typedef enum DinStatus {
	DIN_OK = 0,
	DIN_EINVAL,   /* bad caller input (unknown id, wrong lengths): invalid_parameter_value */
	DIN_ECORRUPT, /* bad model file or config: data_corrupted */
	DIN_ELIMIT,   /* a size limit: program_limit_exceeded */
	DIN_ENOMEM,   /* allocation failed: out_of_memory */
	/*
	 * the caller's poll (DinRequest.interrupted) said stop: nothing written is usable, and the
	 * caller handles its interrupt (the glue raises the cancel or timeout error)
	 */
	DIN_EINTERRUPTED
} DinStatus;

typedef struct DinError {
	DinStatus code;
	char msg[256];    /* lower case, no period: "unknown item id 42" */
	char detail[512]; /* a full sentence, or empty */
} DinError;

/* din_fail - set *err (if err is not NULL) and return code; detail may be NULL. */
DinStatus din_fail(DinError *err, DinStatus code, const char *detail, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif

/*
 * poll.h - asking the caller whether to stop (DinRequest.interrupted), spaced by work.
 *
 * A cancel must take effect within milliseconds whatever the model and request, so the scorers
 * report the work they did (in multiply-adds, an elementwise operation counting one) at points
 * inside every loop that grows with the history or the candidates, and split such a loop into
 * pieces when one pass of it would be long. The caller's function runs once POLL_WORK has
 * accumulated, so it is neither asked every iteration of a cheap loop nor starved by a costly
 * one. Internal to src/models.
 */
#ifndef DIN_MODELS_POLL_H
#define DIN_MODELS_POLL_H

/* About 50 µs of vector work (1 ms of scalar), so a stop waits for little. */
#define POLL_WORK (1 << 20)

/* An exp (a softmax's, a gate's) in multiply-adds, about: what a vector exp costs. */
#define POLL_EXP 16

typedef struct Poll {
	int (*interrupted)(void *arg); /* NULL: never stop */
	void *arg;
	double work; /* reported since the last call */
	int stop;    /* the caller said stop: every later check says so too */
} Poll;

/* Report `work` more; whether to stop now. */
static inline int
poll_stop(Poll *p, double work)
{
	if (p->stop || p->interrupted == NULL)
		return p->stop;
	p->work += work;
	if (p->work >= POLL_WORK) {
		p->work = 0;
		p->stop = p->interrupted(p->arg) != 0;
	}
	return p->stop;
}

/* Rows per piece of a row-wise loop costing row_work each: about POLL_WORK, at least one. */
static inline int
poll_rows(double row_work)
{
	return row_work >= POLL_WORK ? 1 : (int)(POLL_WORK / (row_work > 1 ? row_work : 1));
}

#endif

/*
 * epilogue.c - what a product does to its outputs (nn.h NnEpilogue): the DIN unit's row
 * additions, a batch norm, the activation.
 *
 * Every level can run them as separate passes over y. At the AVX2 level the common case (row
 * additions, then sigmoid or a folded Dice gate, on rows of whole vectors) is one pass that
 * reads and writes y once, each vector through the same functions (vec_avx2.h) as the separate
 * passes, so the bits are theirs. Running it inside the product's register tiles was slower:
 * sigmoid's long dependency chains then stall the tiles, while a loop over many rows keeps
 * several vectors in flight.
 */
#include "kernels.h"
#include "rowops.h"
#include "vec_avx2.h"

void
nn_epilogue(const NnEpilogue *ep, float *y, int n, int out)
{
	nn_kernels()->epilogue(ep, y, n, out);
}

void
nn_epilogue_steps(const NnEpilogue *ep, float *y, int n, int out)
{
	if (ep->add_q != NULL)
		for (int i0 = 0, c = 0; i0 < n; i0 += ep->period, c++)
			nn_rows_add2(y + (size_t)i0 * out, ep->add_q + (size_t)c * out, ep->add_k,
			             n - i0 < ep->period ? n - i0 : ep->period, out);
	if (ep->bn != NULL && ep->bn->n > 0)
		nn_batchnorm(ep->bn, y, n);
	if (ep->act != NULL) {
		DinAct act = *ep->act;

		/* the activation always spans the product's output, whatever the config left in units */
		act.units = out;
		nn_activate(&act, y, n);
	}
}

/* One pass of AVX2's common case, for a compile-time activation kind. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
one_pass(const NnEpilogue *ep, float *y, int n, int out, const DinActKind kind)
{
	const DinAct *act = ep->act;

	for (int i = 0, q = 0, k = 0; i < n; i++) {
		float *yi = y + (size_t)i * out;
		const float *qi = ep->add_q ? ep->add_q + (size_t)q * out : NULL;
		const float *ki = ep->add_q ? ep->add_k + (size_t)k * out : NULL;

		for (int j = 0; j < out; j += 8) {
			__m256 v = _mm256_loadu_ps(yi + j);

			if (qi != NULL)
				v = _mm256_add_ps(v,
				                  _mm256_add_ps(_mm256_loadu_ps(qi + j), _mm256_loadu_ps(ki + j)));
			if (kind == DIN_ACT_SIGMOID)
				v = sigmoid8(v);
			else if (kind == DIN_ACT_DICE)
				v = dice8(v, _mm256_loadu_ps(act->gate_a + j), _mm256_loadu_ps(act->gate_b + j),
				          _mm256_loadu_ps(act->gate_alpha + j));
			_mm256_storeu_ps(yi + j, v);
		}
		if (ep->add_q != NULL && ++k == ep->period) {
			k = 0;
			q++;
		}
	}
}

__attribute__((target("avx2,fma"))) void
nn_epilogue_avx2(const NnEpilogue *ep, float *y, int n, int out)
{
	DinActKind kind = ep->act ? ep->act->kind : DIN_ACT_LINEAR;

	if (out % 8 != 0 || (ep->bn != NULL && ep->bn->n > 0))
		nn_epilogue_steps(ep, y, n, out);
	else if (kind == DIN_ACT_SIGMOID)
		one_pass(ep, y, n, out, DIN_ACT_SIGMOID);
	else if (kind == DIN_ACT_DICE && ep->act->gate_a != NULL)
		one_pass(ep, y, n, out, DIN_ACT_DICE);
	else if (kind == DIN_ACT_LINEAR) {
		if (ep->add_q != NULL)
			one_pass(ep, y, n, out, DIN_ACT_LINEAR);
	} else
		nn_epilogue_steps(ep, y, n, out);
}

/*
 * din_unit.c - the split first layer of DIN's activation unit (see din_unit.h).
 *
 * The regrouped weights att.q, att.k, att.p are made and packed with the model (config_pack.c);
 * a model filled by hand has none, and then the stored [U, 4W] weight is read by column blocks.
 */
#include "din_unit.h"
#include "../nn/linear_strided.h"
#include "../nn/rowops.h"

void
din_unit_keys(const DinAttUnit *u, const float *keys, int T, float *hk, float *tmp)
{
	const DinLayer *l0 = &u->layers[0];
	int W = l0->in / 4;

	if (u->k.weight != NULL) {
		nn_layer_product(&u->k, keys, T, hk);
		return;
	}
	nn_linear_strided(keys, W, T, W, l0->weight + W, 4 * W, l0->out, NULL, hk);
	nn_linear_strided(keys, W, T, W, l0->weight + 2 * W, 4 * W, l0->out, NULL, tmp);
	for (int i = 0; i < T * l0->out; i++)
		hk[i] -= tmp[i];
}

/* a[nc T, U] = act(BN(layer 0)), with prod (nc T x W) holding q_c * k_t. */
static void
first_layer(const DinAttUnit *u, const float *q, int nc, const float *keys, const float *hk, int T,
            float *hq, float *tmp, float *prod, float *a)
{
	const DinLayer *l0 = &u->layers[0];
	int W = l0->in / 4, U = l0->out, ld = 4 * W;
	NnEpilogue ep = {.add_q = hq, .add_k = hk, .period = T, .bn = &l0->bn, .act = &l0->act};

	if (u->q.weight != NULL)
		nn_layer_product(&u->q, q, nc, hq);
	else {
		nn_linear_strided(q, W, nc, W, l0->weight, ld, U, l0->bias, hq);
		nn_linear_strided(q, W, nc, W, l0->weight + 2 * W, ld, U, NULL, tmp);
		for (int i = 0; i < nc * U; i++)
			hq[i] += tmp[i];
	}
	for (int c = 0; c < nc; c++)
		nn_rows_mul(prod + (size_t)c * T * W, q + (size_t)c * W, keys, T, W);
	if (u->p.weight != NULL)
		nn_layer_product_ep(&u->p, &ep, prod, nc * T, a);
	else {
		nn_linear_strided(prod, W, nc * T, W, l0->weight + 3 * W, ld, U, NULL, a);
		nn_epilogue(&ep, a, nc * T, U);
	}
}

static void
unit_piece(const DinAttUnit *u, const float *q, int nc, const float *keys, const float *hk, int T,
           float *hq, float *tmp, float *buf_a, float *buf_b, float *scores)
{
	float *cur = buf_a, *other = buf_b;
	int width = u->layers[0].out;

	first_layer(u, q, nc, keys, hk, T, hq, tmp, other, cur);
	for (int l = 1; l < u->n_layers; l++) {
		float *swap;

		nn_layer(&u->layers[l], cur, nc * T, other);
		swap = cur;
		cur = other;
		other = swap;
		width = u->layers[l].out;
	}
	nn_rows_dot(scores, cur, nc * T, width, u->out_weight, u->out_bias);
}

int
din_unit_scores(const DinAttUnit *u, const float *q, int nc, const float *keys, const float *hk,
                int T, int rows, float *hq, float *tmp, float *buf_a, float *buf_b, float *scores,
                Poll *poll)
{
	int W = u->layers[0].in / 4, U = u->layers[0].out;
	int piece = nc == 1 ? rows : T; /* rows are independent: pieces change no bit */

	for (int t0 = 0; t0 < T; t0 += piece) {
		int n = T - t0 < piece ? T - t0 : piece;

		unit_piece(u, q, nc, keys + (size_t)t0 * W, hk + (size_t)t0 * U, n, hq, tmp, buf_a, buf_b,
		           scores + t0);
		if (poll_stop(poll, (double)nc * n * din_unit_pair_work(u)))
			return 1;
	}
	return 0;
}

double
din_unit_pair_work(const DinAttUnit *u)
{
	const DinLayer *l = u->layers;
	double work = (double)(l[0].in / 4) * l[0].out; /* only (q*k) Wp^T is per pair */

	for (int i = 1; i < u->n_layers; i++)
		work += (double)l[i].in * l[i].out;
	return work + l[u->n_layers - 1].out;
}

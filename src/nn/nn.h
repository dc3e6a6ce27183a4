/*
 * nn.h - numeric kernels of din: dense layers, batch norm, activations, softmax.
 *
 * Plain C, no PostgreSQL headers, no allocation: callers pass every buffer. Matrices are
 * row-major; a linear weight is [out, in] as PyTorch stores it (y = x W^T + b).
 */
#ifndef DIN_NN_H
#define DIN_NN_H

#include <stddef.h>
#include <stdint.h>

typedef enum DinActKind {
	DIN_ACT_LINEAR = 0,
	DIN_ACT_RELU,
	DIN_ACT_SIGMOID,
	DIN_ACT_TANH,
	DIN_ACT_LEAKY_RELU,
	DIN_ACT_GELU,
	DIN_ACT_HARD_SIGMOID,
	DIN_ACT_PRELU,
	DIN_ACT_DICE
} DinActKind;

/* An activation with its parameters; pointers are NULL when the variant has no such tensor. */
typedef struct DinAct {
	DinActKind kind;
	int units;       /* width it applies to */
	float slope;     /* leaky_relu, hard_sigmoid */
	float offset;    /* hard_sigmoid */
	float eps;       /* dice */
	int gelu_tanh;   /* gelu: 1 = tanh approximation */
	int dice_sample; /* dice: 1 = per-row statistics across units (torch-rechub) */
	int alpha_n;     /* prelu, dice: 1 (scalar) or units */
	const float *alpha;
	const float *mean; /* dice running statistics [units] */
	const float *var;
	const float *weight; /* dice affine [units] or NULL */
	const float *bias;
	const float *beta; /* dice: scale inside the sigmoid [units] or NULL */
	/*
	 * Dice with running statistics, folded once per model (nn_dice_fold): the gate's sigmoid
	 * argument is x gate_a + gate_b, its floor gate_alpha, all [units]. NULL: folded per call.
	 */
	const float *gate_a, *gate_b, *gate_alpha;
} DinAct;

/* Batch norm at inference; n == 0 means absent. weight/bias NULL = no affine. */
typedef struct DinBN {
	int n;
	float eps;
	const float *mean;
	const float *var;
	const float *weight;
	const float *bias;
	const float *scale, *shift; /* [n], folded once per model (nn_batchnorm_fold); NULL: per call */
} DinBN;

/* One dense layer: y = act(BN(x W^T + b)). bias may be NULL. */
typedef struct DinLayer {
	int in;
	int out;
	const float *weight; /* [out, in] */
	const float *bias;   /* [out] or NULL */
	DinBN bn;
	DinAct act;
	/*
	 * weight in the blocked kernel's layout (nn_pack_weight), packed once per model so a
	 * one-row product does not repack W on every call; NULL = nn_linear on weight.
	 */
	const float *packed;
} DinLayer;

/* y[n, out] = x[n, in] W^T + b (b may be NULL). x and y must not overlap. */
void nn_linear(const float *x, int n, int in, int out, const float *w, const float *b, float *y);

/*
 * Floats nn_pack_weight needs for a [out, in] weight; 0 when the running level's kernels take no
 * packed weights (then keep DinLayer.packed NULL).
 */
size_t nn_packed_floats(int in, int out);

/* packed[nn_packed_floats(in, out)] = w [out, in] (row stride ldw) in the blocked layout. */
void nn_pack_weight(const float *w, int ldw, int in, int out, float *packed);

/* y[n, out] = x[n, in] W^T + b with the layer's weight, packed when layer->packed is set. */
void nn_layer_product(const DinLayer *layer, const float *x, int n, float *y);

/*
 * What a product does to its outputs before it is done, in this order: y[i] += add_q[i / period]
 * + add_k[i % period] (rows as wide as y: the DIN unit's query and key parts), the batch norm
 * bn, the activation act (its units are the product's width). A NULL member skips its step.
 * The AVX2 level runs the common case in one pass over y (epilogue.c); the bits are those of
 * the separate steps.
 */
typedef struct NnEpilogue {
	const float *add_q, *add_k;
	int period;
	const DinBN *bn;
	const DinAct *act;
} NnEpilogue;

/* y[n, out] = ep(x[n, in] W^T + b) with the layer's weight (not its own bn and act). */
void nn_layer_product_ep(const DinLayer *layer, const NnEpilogue *ep, const float *x, int n,
                         float *y);

/* ep over y[n, out], rows of out floats. */
void nn_epilogue(const NnEpilogue *ep, float *y, int n, int out);

/* Reference (scalar, obviously correct) version of nn_linear, for tests. */
void nn_linear_ref(const float *x, int n, int in, int out, const float *w, const float *b,
                   float *y);

/* In place over x[n, bn->n]. */
void nn_batchnorm(const DinBN *bn, float *x, int n);

/* y = x scale + shift equals the batch norm bn: scale and shift have bn->n floats. */
void nn_batchnorm_fold(const DinBN *bn, float *scale, float *shift);

/* Whether nn_dice_fold applies (Dice with running statistics, not per-row ones). */
int nn_dice_foldable(const DinAct *act);

/* The gate coefficients of act (nn_dice_foldable) for its `units` units, [units] each. */
void nn_dice_fold(const DinAct *act, int units, float *a, float *b, float *alpha);

/* In place over x[n, act->units]. */
void nn_activate(const DinAct *act, float *x, int n);

/* Whole layer: y[n, out] from x[n, in]. */
void nn_layer(const DinLayer *layer, const float *x, int n, float *y);

/* In place softmax over x[n]; n == 0 is a no-op. */
void nn_softmax(float *x, int n);
/*
 * Softmax over x[0..n) where x[n-1] stands for `count` equal entries (count >= 1); x[n-1]
 * becomes the weight of one of them.
 */
void nn_softmax_counted(float *x, int n, int count);

double nn_sigmoid(double x);

/* dot product of a and b, length n */
float nn_dot(const float *a, const float *b, int n);

#endif

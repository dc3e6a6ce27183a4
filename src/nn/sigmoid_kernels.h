/*
 * sigmoid_kernels.h - the sigmoid-shaped inner loops (sigmoid, tanh, Dice), vectorized by hand.
 *
 * Dice dominates the attention unit's cost: one exp per pair and unit. Its affine parts are
 * folded into per-unit coefficients by the caller so the loop here is exp-bound; the AVX2
 * variants evaluate eight or sixteen exps at once with a Cephes polynomial (about 1 ulp, like
 * expf).
 */
#ifndef DIN_SIGMOID_KERNELS_H
#define DIN_SIGMOID_KERNELS_H

#include <stddef.h>

/* x[i] = sigmoid(x[i]) */
void nn_sigmoid_inplace(float *x, size_t n);

/* x[i] = exp(x[i]) (softmax) */
void nn_exp_inplace(float *x, size_t n);

/* x[i] = tanh(x[i]) (the GRU and LSTM cells' candidate and output) */
void nn_tanh_inplace(float *x, size_t n);

/* x[j] = x[j] * (p + alpha[j] (1 - p)), p = sigmoid(x[j] a[j] + b[j]), for j < n */
void nn_dice_gate(float *x, const float *a, const float *b, const float *alpha, int n);

#endif

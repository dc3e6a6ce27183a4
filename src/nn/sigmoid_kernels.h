/*
 * sigmoid_kernels.h - the sigmoid-shaped inner loops (sigmoid, tanh, Dice), vectorized by hand.
 *
 * Sigmoid and Dice dominate the attention unit's cost after its products: one exp per pair and
 * unit. Dice's affine parts are folded into per-unit coefficients by the caller so the loop here
 * is exp-bound; the vector variants evaluate eight or sixteen exps at once (vec_avx2.h, and a
 * Cephes polynomial for exp and tanh: about 1 ulp, like expf).
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

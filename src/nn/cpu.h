/*
 * cpu.h - the kernel level din runs at, chosen once for the whole process.
 *
 * The hand-vectorized kernels of src/nn come in levels. cpu.c reads the CPU once and runs the
 * best level it supports; no kernel looks at the CPU itself. Tests and benches switch levels to
 * compare them. The AVX-512 level gives the AVX2 level's bits in the dense products and differs
 * in the last bits of sigmoid, tanh and exp; the portable level differs from both in the last
 * bits. At the AVX2 and AVX-512 levels a candidate's score is the same to the bit whether it is
 * scored alone or in a batch.
 */
#ifndef DIN_NN_CPU_H
#define DIN_NN_CPU_H

typedef enum NnLevel {
	NN_LEVEL_PORTABLE, /* C the compiler vectorizes; large products through OpenBLAS sgemm */
	NN_LEVEL_AVX2,     /* AVX2 and FMA */
	NN_LEVEL_AVX512    /* AVX-512F product tiles and sigmoid-shaped loops, AVX2 for the rest */
} NnLevel;

/* The best level this CPU (and its operating system) runs; read on the first call. */
NnLevel nn_cpu_level(void);

/* Run at nn_cpu_level(). Scoring selects it by itself on first use; the glue calls this at load. */
void nn_init(void);

/* Run at `level`; returns 0 and changes nothing when the CPU cannot run it. */
int nn_set_level(NnLevel level);

/* The level running now. */
NnLevel nn_level(void);

#endif

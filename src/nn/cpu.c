/*
 * cpu.c - the one place that reads the CPU and picks the kernels (cpu.h, kernels.h).
 *
 * One table per level; adding a level is its variants and one more table. The choice is a
 * pointer written at load (nn_init) or on first use, the same value every time, and by tests.
 */
#include "kernels.h"

static const NnKernels levels[] = {
    [NN_LEVEL_PORTABLE] = {.packs = 0,
                           .linear = nn_linear_portable,
                           .epilogue = nn_epilogue_steps,
                           .sigmoid = nn_sigmoid_portable,
                           .tanh = nn_tanh_portable,
                           .exp = nn_exp_portable,
                           .dice_gate = nn_dice_gate_portable,
                           .rows_mul = nn_rows_mul_portable,
                           .rows_add2 = nn_rows_add2_portable,
                           .rows_dot = nn_rows_dot_portable,
                           .rows_pool = nn_rows_pool_portable,
                           .all_finite = nn_all_finite_portable},
    [NN_LEVEL_AVX2] = {.packs = 1,
                       .linear = nn_linear_avx2,
                       .epilogue = nn_epilogue_avx2,
                       .sigmoid = nn_sigmoid_avx2,
                       .tanh = nn_tanh_avx2,
                       .exp = nn_exp_avx2,
                       .dice_gate = nn_dice_gate_avx2,
                       .rows_mul = nn_rows_mul_avx2,
                       .rows_add2 = nn_rows_add2_avx2,
                       .rows_dot = nn_rows_dot_avx2,
                       .rows_pool = nn_rows_pool_avx2,
                       .all_finite = nn_all_finite_avx2},
    [NN_LEVEL_AVX512] = {.packs = 1,
                         .linear = nn_linear_avx512,
                         .epilogue = nn_epilogue_steps,
                         .sigmoid = nn_sigmoid_avx512,
                         .tanh = nn_tanh_avx512,
                         .exp = nn_exp_avx512,
                         .dice_gate = nn_dice_gate_avx512,
                         .rows_mul = nn_rows_mul_avx2,
                         .rows_add2 = nn_rows_add2_avx2,
                         .rows_dot = nn_rows_dot_avx2,
                         .rows_pool = nn_rows_pool_avx2,
                         .all_finite = nn_all_finite_avx2},
};

static const NnKernels *running = NULL;

NnLevel
nn_cpu_level(void)
{
	static int level = -1;

	if (level < 0) {
		/* GCC's checks include the operating system's support for the wider registers */
		__builtin_cpu_init();
		if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
			level = NN_LEVEL_PORTABLE;
		else if (!__builtin_cpu_supports("avx512f"))
			level = NN_LEVEL_AVX2;
		else
			level = NN_LEVEL_AVX512;
	}
	return (NnLevel)level;
}

void
nn_init(void)
{
	running = &levels[nn_cpu_level()];
}

int
nn_set_level(NnLevel level)
{
	if (level < NN_LEVEL_PORTABLE || level > nn_cpu_level())
		return 0;
	running = &levels[level];
	return 1;
}

NnLevel
nn_level(void)
{
	return (NnLevel)(nn_kernels() - levels);
}

const NnKernels *
nn_kernels(void)
{
	if (running == NULL)
		nn_init();
	return running;
}

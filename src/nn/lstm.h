/*
 * lstm.h - the LSTM of DSIN's session interest interacting layer (docs/FORMAT.md "interacting").
 *
 * Tensors follow torch.nn.LSTM: weight_ih [4H, in], weight_hh [4H, H], bias_ih, bias_hh [4H],
 * rows in gate order i, f, g (the cell candidate, Keras "c"), o. A Keras LSTM's kernel [in, 4H]
 * and recurrent_kernel [H, 4H] (columns i|f|c|o) are written transposed; its single bias goes
 * to bias_ih with bias_hh zero. No peepholes (DeepCTR has none).
 */
#ifndef DIN_LSTM_H
#define DIN_LSTM_H

#include <stddef.h>

typedef enum DinLstmGate {
	DIN_LSTM_SIGMOID = 0, /* TF >= 2, PyTorch */
	DIN_LSTM_HARD_SIGMOID /* Keras under TF <= 1.15: clip(0.2 x + 0.5, 0, 1) */
} DinLstmGate;

typedef struct DinLstm {
	int in;
	int hidden;
	DinLstmGate gate; /* recurrent activation of i, f, o */
	const float *w_ih, *w_hh, *b_ih, *b_hh;
} DinLstm;

/* Floats of work lstm_run needs for T steps. */
size_t lstm_work_floats(const DinLstm *l, int T);

/*
 * out[T, H] = the hidden states over x[T, in] from the zero state. reverse runs t = T-1 .. 0
 * and stores each state at its input's index (Keras go_backwards followed by a reverse, as
 * DeepCTR's BiLSTM does after every layer).
 */
void lstm_run(const DinLstm *l, const float *x, int T, int reverse, float *out, float *work);

#endif

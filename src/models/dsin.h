/*
 * dsin.h - DSIN (IJCAI 2019): session division, a self-attention session interest extractor,
 * a Bi-LSTM across sessions and two activation units (docs/FORMAT.md "architecture dsin").
 * Bound by src/format/config_dsin.c, run through its DinArchOps (dsin.c).
 */
#ifndef DIN_DSIN_H
#define DIN_DSIN_H

#include "../nn/lstm.h"
#include "../nn/self_attention.h"
#include "model.h"
#include "session.h"

#define DSIN_MAX_LSTM_LAYERS 8
#define DSIN_MAX_SESSIONS 256
#define DSIN_MAX_SESSION_LEN 1024

typedef enum DinDsinEncoding {
	DSIN_ENC_POSITIONAL = 0, /* DeepCTR: two trainable [T, E] tables times sqrt(E) */
	DSIN_ENC_BIAS,           /* paper Eq. 2-3: w^K_k + w^T_t + w^C_c */
	DSIN_ENC_NONE
} DinDsinEncoding;

typedef enum DinDsinMerge {
	DSIN_MERGE_AVE = 0,
	DSIN_MERGE_CONCAT,
	DSIN_MERGE_SUM,
	DSIN_MERGE_MUL,
	DSIN_MERGE_FW,
	DSIN_MERGE_BW
} DinDsinMerge;

/* An activation unit of the target over K session vectors key_w wide. */
typedef struct DinDsinUnit {
	int bilinear; /* s_k = key_k W e_a, W [key_w, E]; else the DIN unit on [q, k, q-k, q*k] */
	int softmax;  /* masked softmax over the valid sessions; else raw scores, 0 when masked */
	int key_w;
	int n_layers;
	DinLayer *layers;
	const float *out_w; /* [last units] */
	float out_b;
	const float *bilinear_w; /* [key_w, E] */
} DinDsinUnit;

typedef struct DinDsin {
	DinSessionRule rule; /* K = rule.count, T = rule.length */
	DinSelfAttention sa;
	DinDsinEncoding enc;
	const float *bias_session, *bias_position, *bias_item; /* [K], [T], [E] */
	int pool_valid; /* mean over the valid rows (paper) instead of all T (DeepCTR) */
	int has_lstm;
	int lstm_layers;
	int lstm_hidden;
	int steps_valid; /* run the LSTMs over the valid sessions only, not all K */
	DinLstm fw[DSIN_MAX_LSTM_LAYERS], bw[DSIN_MAX_LSTM_LAYERS];
	DinDsinMerge merge;
	int inter_w;         /* width of a merged Bi-LSTM output (H, or 2H for concat); 0 without */
	DinDsinUnit unit[2]; /* 0: over the session interests I_k, 1: over the Bi-LSTM outputs */
} DinDsin;

#endif

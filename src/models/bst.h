/*
 * bst.h - the Behavior Sequence Transformer (docs/FORMAT.md "architecture bst"): the bound
 * blocks, filled by src/format/config_bst.c and run through its DinArchOps (bst.c).
 */
#ifndef DIN_BST_H
#define DIN_BST_H

#include "model.h"

#define DIN_BST_MAX_POSITIONS 4
#define DIN_BST_MAX_BOUNDARIES 256

typedef enum DinBstReadout {
	DIN_BST_READ_TARGET = 0,
	DIN_BST_READ_MEAN,
	DIN_BST_READ_ATTENTION,
	DIN_BST_READ_MEAN_ALL /* DeepCTR's output_type "mean": over max_len rows, padding included */
} DinBstReadout;

/* One position feature of the sequence rows (index slot, or bucketed time gap). */
typedef struct DinBstPosition {
	int time_gap;  /* 0: index of the slot; 1: bucket of at - t_i (seconds) */
	int concat;    /* 1: appended after the item vector; 0: added to the whole row */
	int dim;       /* columns it contributes (D when added) */
	int align_end; /* index: behaviour t of T sits at slot width - T + t (front padding) */
	int width;     /* index: the padded width; the appended target sits at slot width */
	float scale;
	int n_bounds; /* time_gap: bucket = number of boundaries <= gap */
	double bounds[DIN_BST_MAX_BOUNDARIES];
	const float *table; /* [rows, dim] */
} DinBstPosition;

typedef struct DinBstBlock {
	const float *wq, *wk, *wv; /* [D, D] each; PyTorch: the thirds of in_proj_weight */
	const float *bq, *bk, *bv; /* [D] or NULL (DeepCTR) */
	const float *wo, *bo;      /* out_proj [D, D], [D]; NULL: no output projection (DeepCTR) */
	DinLayer ffn1, ffn2;       /* D -> F with the activation, F -> D linear */
	const float *ln1_w, *ln1_b, *ln2_w, *ln2_b; /* the same pointers when shared */
	const float *pe_q, *pe_k;                   /* [width, D] or NULL: DeepCTR block positions */
} DinBstBlock;

typedef struct DinBst {
	int target; /* 1: the candidate is appended as the last row */
	int D, heads, n_blocks, ffn_units, pre_norm;
	float eps;
	DinBstReadout readout;
	int n_pos, uses_time;
	DinBstPosition pos[DIN_BST_MAX_POSITIONS];
	int bp_align_end, bp_width; /* block positions (pe_q/pe_k) */
	int64_t pad_row;            /* mean_all: the behaviour tables' row a padded slot looks up */
	DinBstBlock blocks[];
} DinBst;

#endif

"""The libraries' own forward passes, written out in float64 numpy from their source (models.md
§3.5, §4.4, §6.4, §4.6), over their own padded inputs and state_dict names. The variants test
scores what these compute through din-convert and din, so the converter's mapping is checked
against the library's math, not against din's reading of it.
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(s):
    e = np.exp(s - s.max())
    return e / e.sum()


def f64(sd):
    return {k: np.asarray(v, dtype=np.float64) for k, v in sd.items()}


# ---- DeepCTR-Torch ----------------------------------------------------------------------

def dctr_act(sd, prefix, name, x):
    n = name.lower()
    if n == "relu":
        return np.maximum(x, 0)
    if n == "sigmoid":
        return sigmoid(x)
    if n == "linear":
        return x
    if n == "prelu":
        a = sd[prefix + ".weight"][0]
        return np.maximum(x, 0) + a * np.minimum(x, 0)
    if n == "dice":  # BatchNorm1d(eps=1e-8) with affine, alpha [C, 1] or [C]
        bn = ((x - sd[prefix + ".bn.running_mean"]) / np.sqrt(sd[prefix + ".bn.running_var"] + 1e-8)
              * sd[prefix + ".bn.weight"] + sd[prefix + ".bn.bias"])
        p = sigmoid(bn)
        return sd[prefix + ".alpha"].reshape(-1) * (1 - p) * x + p * x
    raise ValueError(name)


def dctr_dnn(sd, prefix, x, n_layers, act, use_bn):
    for i in range(n_layers):
        x = x @ sd["%s.linears.%d.weight" % (prefix, i)].T + sd["%s.linears.%d.bias" % (prefix, i)]
        if use_bn:
            b = "%s.bn.%d." % (prefix, i)
            x = ((x - sd[b + "running_mean"]) / np.sqrt(sd[b + "running_var"] + 1e-5)
                 * sd[b + "weight"] + sd[b + "bias"])
        x = dctr_act(sd, "%s.activation_layers.%d" % (prefix, i), act, x)
    return x


def dctr_attention(sd, prefix, q, K, length, n_layers, act, normalize):
    """AttentionSequencePoolingLayer over all T slots, masked by length: weights [T]."""
    T = K.shape[0]
    Q = np.broadcast_to(q, K.shape)
    z = np.concatenate([Q, K, Q - K, Q * K], axis=1)
    h = dctr_dnn(sd, prefix + ".local_att.dnn", z, n_layers, act, False)
    s = (h @ sd[prefix + ".local_att.dense.weight"].T + sd[prefix + ".local_att.dense.bias"])[:, 0]
    mask = np.arange(T) < length
    if normalize:
        return softmax(np.where(mask, s, -2.0 ** 32 + 1))
    return np.where(mask, s, 0.0)


def emb(sd, table, ids):
    return sd["embedding_dict.%s.weight" % table][ids]


def dctr_din(sd, row, c):
    """c: sparse [(name, table)] in lookup order, query [(name, table)], keys [(name, table)],
    dense [names], att_layers, att_act, norm, dnn_layers, dnn_act, use_bn."""
    sd = f64(sd)
    q = np.concatenate([emb(sd, t, row[n]) for n, t in c["query"]])
    K = np.concatenate([emb(sd, t, row[n]) for n, t in c["keys"]], axis=1)
    w = dctr_attention(sd, "attention", q, K, row["seq_length"], c["att_layers"], c["att_act"],
                       c["norm"])
    x = np.concatenate([emb(sd, t, row[n]) for n, t in c["sparse"]] + [w @ K]
                       + [np.atleast_1d(row[d]) for d in c["dense"]])
    h = dctr_dnn(sd, "dnn", x, c["dnn_layers"], c["dnn_act"], c["use_bn"])
    return sigmoid(h @ sd["dnn_linear.weight"][0] + sd["out.bias"][0])


def torch_gru_cell(W_ih, W_hh, b_ih, b_hh, x, h):
    gi = W_ih @ x + b_ih
    gh = W_hh @ h + b_hh
    H = h.shape[0]
    r = sigmoid(gi[:H] + gh[:H])
    z = sigmoid(gi[H:2 * H] + gh[H:2 * H])
    n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
    return (1 - z) * n + z * h, r, z, n


def torch_gru(sd, prefix, suffix, X):
    p = [sd["%s.%s%s" % (prefix, k, suffix)] for k in ("weight_ih", "weight_hh", "bias_ih",
                                                        "bias_hh")]
    h = np.zeros(p[1].shape[1])
    out = []
    for x in X:
        h = torch_gru_cell(*p, x, h)[0]
        out.append(h)
    return np.array(out).reshape(len(X), -1), h


def dctr_dien(sd, row, c):
    sd = f64(sd)
    L = row["seq_length"]
    q = np.concatenate([emb(sd, t, row[n]) for n, t in c["query"]])
    K = np.concatenate([emb(sd, t, row[n]) for n, t in c["keys"]], axis=1)
    T, E = K.shape
    hist = np.zeros(E)
    if L > 0:
        states = np.zeros((T, E))
        states[:L] = torch_gru(sd, "interest_extractor.gru", "_l0", K[:L])[0]
        evo = "interest_evolution.interest_evolution"
        att = lambda keys: dctr_attention(sd, "interest_evolution.attention", q, keys, L,  # noqa
                                          c["att_layers"], c["att_act"], c["norm"])
        g = c["gru_type"]
        if g == "GRU":
            h2 = np.zeros((T, E))
            h2[:L] = torch_gru(sd, evo, "_l0", states[:L])[0]
            hist = att(h2) @ h2
        elif g == "AIGRU":
            a = att(states)
            hist = torch_gru(sd, evo, "_l0", (states * a[:, None])[:L])[1]
        else:
            a = att(states)
            p = [sd["%s.rnn.%s" % (evo, k)] for k in ("weight_ih", "weight_hh", "bias_ih",
                                                      "bias_hh")]
            h = np.zeros(E)
            for t in range(L):
                _, r, z, n = torch_gru_cell(*p, states[t], h)
                if g == "AGRU":
                    h = (1 - a[t]) * h + a[t] * n
                else:
                    u = a[t] * z
                    h = (1 - u) * h + u * n
            hist = h
    x = np.concatenate([hist] + [emb(sd, t, row[n]) for n, t in c["sparse"]]
                       + [np.atleast_1d(row[d]) for d in c["dense"]])
    h = dctr_dnn(sd, "dnn", x, c["dnn_layers"], c["dnn_act"], c["use_bn"])
    return sigmoid(h @ sd["linear.weight"][0] + sd["out.bias"][0])


# ---- torch-rechub -----------------------------------------------------------------------

def rechub_act(sd, prefix, name, x):
    n = name.lower()
    if n == "relu":
        return np.maximum(x, 0)
    if n == "sigmoid":
        return sigmoid(x)
    if n == "leakyrelu":
        return np.where(x >= 0, x, 0.01 * x)
    if n == "prelu":
        a = sd[prefix + ".weight"][0]
        return np.maximum(x, 0) + a * np.minimum(x, 0)
    if n == "dice":  # per-row statistics across the units, eps 1e-3, a sum not a mean
        avg = x.mean()
        var = ((x - avg) ** 2 + 1e-3).sum()
        ps = sigmoid((x - avg) / np.sqrt(var))
        return ps * x + (1 - ps) * sd[prefix + ".alpha"][0] * x
    raise ValueError(name)


def rechub_mlp(sd, x, n_layers, act):
    for i in range(n_layers):
        k = 4 * i
        x = x @ sd["mlp.mlp.%d.weight" % k].T + sd["mlp.mlp.%d.bias" % k]
        b = "mlp.mlp.%d." % (k + 1)
        x = ((x - sd[b + "running_mean"]) / np.sqrt(sd[b + "running_var"] + 1e-5)
             * sd[b + "weight"] + sd[b + "bias"])
        x = rechub_act(sd, "mlp.mlp.%d" % (k + 2), act, x)
    k = 4 * n_layers
    return x @ sd["mlp.mlp.%d.weight" % k][0] + sd["mlp.mlp.%d.bias" % k][0]


def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rechub_emb(sd, table, ids):
    return sd["embedding.embed_dict.%s.weight" % table][ids]


def rechub_bst(sd, row, c):
    """c: hist [(name, table)], target [(name, table)], feats [(name, table)], dense [names],
    heads, blocks, mlp_layers, mlp_act."""
    sd = f64(sd)
    H = np.concatenate([rechub_emb(sd, t, row[n]) for n, t in c["hist"]], axis=1)
    tgt = np.concatenate([rechub_emb(sd, t, row[n]) for n, t in c["target"]])
    seq = np.vstack([H, tgt[None]])
    n, D = seq.shape
    seq = seq + sd["pos_embedding.weight"][:n]
    pad = np.ones(n - 1, dtype=bool)
    for name, _ in c["hist"]:
        pad &= row[name] == 0
    pad = np.append(pad, False)
    x = seq
    d = D // c["heads"]
    for b in range(c["blocks"]):
        p = "transformer_layers.layers.%d." % b
        qkv = x @ sd[p + "self_attn.in_proj_weight"].T + sd[p + "self_attn.in_proj_bias"]
        Q, K, V = qkv[:, :D], qkv[:, D:2 * D], qkv[:, 2 * D:]
        out = np.zeros_like(x)
        for h in range(c["heads"]):
            sl = slice(h * d, (h + 1) * d)
            s = Q[:, sl] @ K[:, sl].T / np.sqrt(d)
            s[:, pad] = -np.inf
            s = np.exp(s - s.max(1, keepdims=True))
            out[:, sl] = (s / s.sum(1, keepdims=True)) @ V[:, sl]
        att = out @ sd[p + "self_attn.out_proj.weight"].T + sd[p + "self_attn.out_proj.bias"]
        x = layer_norm(x + att, sd[p + "norm1.weight"], sd[p + "norm1.bias"])
        f = x @ sd[p + "linear1.weight"].T + sd[p + "linear1.bias"]
        f = np.where(f >= 0, f, 0.01 * f) @ sd[p + "linear2.weight"].T + sd[p + "linear2.bias"]
        x = layer_norm(x + f, sd[p + "norm2.weight"], sd[p + "norm2.bias"])
    z = np.concatenate([x[-1], tgt] + [rechub_emb(sd, t, row[n]) for n, t in c["feats"]]
                       + [np.atleast_1d(row[dn]) for dn in c["dense"]])
    return sigmoid(rechub_mlp(sd, z, c["mlp_layers"], c["mlp_act"]))


def rechub_dien(sd, row, c):
    """One history field, padded at the end with padding_idx 0."""
    sd = f64(sd)
    (hn, ht), = c["hist"]
    (tn, tt), = c["target"]
    ids = row[hn]
    mask = ids != 0
    L = int(mask.sum())
    X = rechub_emb(sd, ht, ids)
    e = rechub_emb(sd, tt, row[tn])
    T, D = X.shape
    h = np.zeros(D)
    if L > 0:
        outs = np.zeros((T, D))
        outs[:L] = torch_gru(sd, "interest_extractor_layers.0", "_l0", X[:L])[0]
        p = "interest_evolving_layers.0."
        s = (outs @ sd[p + "Wa"]) @ e
        a = softmax(np.where(mask, s, -np.inf))
        cell = {k: sd[p + "augru_cell." + k] for k in ("Wu", "Uu", "bu", "Wr", "Ur", "br", "Wh",
                                                       "Uh", "bh")}
        for t in range(T):
            x = outs[t]
            u = sigmoid(x @ cell["Wu"] + h @ cell["Uu"] + cell["bu"][0])
            r = sigmoid(x @ cell["Wr"] + h @ cell["Ur"] + cell["br"][0])
            hh = np.tanh(x @ cell["Wh"] + r * (h @ cell["Uh"]) + cell["bh"][0])
            uh = a[t] * u
            h = (1 - uh) * h + uh * hh
    z = np.concatenate([h, e] + [rechub_emb(sd, t, row[n]) for n, t in c["feats"]]
                       + [np.atleast_1d(row[dn]) for dn in c["dense"]])
    return sigmoid(rechub_mlp(sd, z, c["mlp_layers"], "dice"))

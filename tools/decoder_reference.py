#!/usr/bin/python3
"""PyTorch reference for captionctl's caption decoder (model/decoder*.go).

Writes model/testdata/decoder/parity.json, which model/decoder_parity_test.go
checks the Go decoder against, without PyTorch, at real sizes (B = 32,
T = 16, every dimension 512, 7×7 grid, vocabulary 1000).

The decoder is written here independently, in ordinary PyTorch: the LSTM is
torch.lstm_cell on the CONCATENATED input [embedding; β⊙z] with one 4H-wide
weight matrix (PyTorch's gate order i, f, g, o), built by torch.cat from
captionctl's per-gate tensors so that autograd hands back per-gate
gradients; the loss is F.cross_entropy over the real tokens plus the
doubly stochastic penalty. It runs in float64 on inputs rounded to float32,
so the fixture holds the exact answer for the float32 inputs.

Nothing is committed but small numbers: weights, features, captions,
dropout masks and projection vectors are regenerated on both sides from
splitmix64 (see `stream`), exactly as decoder_parity_test.go does:

  stream(seed)[i] = mix(seed + (i+1)·0x9E3779B97F4A7C15 mod 2⁶⁴), i ≥ 0
  mix(z): z = (z ^ z>>30)·0xBF58476D1CE4E5B9; z = (z ^ z>>27)·0x94D049BB133111EB;
          z ^ z>>31
  u(x) = (x >> 40)·2⁻²⁴ in [0, 1); uniform(lo, hi) = float32(lo + (hi−lo)·u),
  computed in float64; ints(m) = x mod m.

  parameter k (canonical order)  seed 1000+k, uniform(−0.1, 0.1), row-major
  features (B, P, F)            seed 2000, uniform(0, 1)
  dropout mask of step t (B, H) seed 3000+t, 0 if u < p else 1/(1−p)
  caption lengths               seed 4000, ints: caption 0 has T+1 tokens,
                                caption b > 0 has 2 + x_b mod T
  words of caption b            seed 4001+b, ints: 4 + x_j mod (V−4), then
                                the caption is [1, words…, 2]
  projection vector of param k  seed 5000+k, uniform(−1, 1)
  sampled entries of param k    seed 6000+k, ints(size), min(64, size) of them

Run: /usr/bin/python3 tools/decoder_reference.py [--out PATH]
"""

import argparse
import json
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

GAMMA = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)


def stream(seed, n):
    """The first n splitmix64 outputs from state seed, as uint64."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.arange(1, n + 1, dtype=np.uint64) * GAMMA
        z = (z ^ (z >> np.uint64(30))) * M1
        z = (z ^ (z >> np.uint64(27))) * M2
        return z ^ (z >> np.uint64(31))


def unit(x):
    return (x >> np.uint64(40)).astype(np.float64) * (2.0 ** -24)


def uniform(seed, shape, lo, hi):
    n = int(np.prod(shape))
    return (lo + (hi - lo) * unit(stream(seed, n))).astype(np.float32).reshape(shape)


def ints(seed, n, m):
    return (stream(seed, n) % np.uint64(m)).astype(np.int64)


def param_specs(cfg):
    """captionctl's parameters in canonical order: (name, shape), weights (in, out)."""
    V, E, Fd, A, H = cfg["vocab_size"], cfg["embed_dim"], cfg["feature_dim"], cfg["attention_dim"], cfg["hidden_dim"]
    s = [("decoder.embedding.weight", (V, E))]
    att = cfg["arch"] == "attention"
    if att:
        s += [("decoder.init_h.weight", (Fd, H)), ("decoder.init_h.bias", (H,)),
              ("decoder.init_c.weight", (Fd, H)), ("decoder.init_c.bias", (H,)),
              ("decoder.attention.encoder.weight", (Fd, A)), ("decoder.attention.encoder.bias", (A,)),
              ("decoder.attention.decoder.weight", (H, A)), ("decoder.attention.score.weight", (A,)),
              ("decoder.f_beta.weight", (H, Fd)), ("decoder.f_beta.bias", (Fd,))]
    else:
        s += [("decoder.image.weight", (Fd, E)), ("decoder.image.bias", (E,))]
    for g in "ifgo":
        p = "decoder.lstm." + g + "."
        s.append((p + "input.weight", (E, H)))
        if att:
            s.append((p + "context.weight", (Fd, H)))
        s += [(p + "hidden.weight", (H, H)), (p + "bias", (H,))]
    s += [("decoder.output.weight", (H, V)), ("decoder.output.bias", (V,))]
    return s


def make_inputs(cfg, B, T):
    P, Fd, H, V = cfg["grid_cells"], cfg["feature_dim"], cfg["hidden_dim"], cfg["vocab_size"]
    params = {}
    for k, (name, shape) in enumerate(param_specs(cfg)):
        params[name] = uniform(1000 + k, shape, -0.1, 0.1)
    feats = uniform(2000, (B, P, Fd), 0.0, 1.0)
    p = cfg["dropout"]
    masks = []
    for t in range(T):
        u = unit(stream(3000 + t, B * H)).reshape(B, H)
        masks.append(np.where(u < p, 0.0, 1.0 / (1.0 - p)).astype(np.float32))
    lens = ints(4000, B, T)
    caps = []
    for b in range(B):
        L = T + 1 if b == 0 else 2 + int(lens[b])
        words = ints(4001 + b, L - 2, V - 4) + 4 if L > 2 else np.zeros(0, dtype=np.int64)
        caps.append([1] + [int(w) for w in words] + [2])
    return params, feats, masks, caps


def forward(cfg, params, feats, masks, caps, T):
    """Loss (CE mean over real tokens + α_c·mean_b Σ_p (1 − Σ_t r α)²) in float64."""
    B = feats.shape[0]
    att = cfg["arch"] == "attention"
    p = {k: v for k, v in params.items()}
    E = p["decoder.embedding.weight"]
    gates = "ifgo"
    # PyTorch's LSTMCell layout: weight_ih (4H, in) with rows i, f, g, o.
    if att:
        w_ih = torch.cat([torch.cat([p["decoder.lstm.%s.input.weight" % g],
                                     p["decoder.lstm.%s.context.weight" % g]], 0).t() for g in gates], 0)
    else:
        w_ih = torch.cat([p["decoder.lstm.%s.input.weight" % g].t() for g in gates], 0)
    w_hh = torch.cat([p["decoder.lstm.%s.hidden.weight" % g].t() for g in gates], 0)
    b_ih = torch.cat([p["decoder.lstm.%s.bias" % g] for g in gates], 0)
    b_hh = torch.zeros_like(b_ih)

    a = feats
    mean = a.mean(1)
    H = cfg["hidden_dim"]
    if att:
        h = torch.tanh(mean @ p["decoder.init_h.weight"] + p["decoder.init_h.bias"])
        c = torch.tanh(mean @ p["decoder.init_c.weight"] + p["decoder.init_c.bias"])
        att1 = a @ p["decoder.attention.encoder.weight"] + p["decoder.attention.encoder.bias"]  # cached
    else:
        x0 = mean @ p["decoder.image.weight"] + p["decoder.image.bias"]
        zero = torch.zeros(B, H, dtype=a.dtype)
        h, c = torch.lstm_cell(x0, (zero, zero), w_ih, w_hh, b_ih, b_hh)

    inputs = torch.zeros(B, T, dtype=torch.long)
    targets = torch.zeros(B, T, dtype=torch.long)
    real = torch.zeros(B, T, dtype=torch.bool)
    for b, cap in enumerate(caps):
        n = len(cap) - 1
        inputs[b, :n] = torch.tensor(cap[:-1])
        targets[b, :n] = torch.tensor(cap[1:])
        real[b, :n] = True

    logits, alphas = [], []
    for t in range(T):
        emb = F.embedding(inputs[:, t], E)
        if att:
            att2 = h @ p["decoder.attention.decoder.weight"]
            e = F.relu(att1 + att2.unsqueeze(1)) @ p["decoder.attention.score.weight"]
            alpha = F.softmax(e, dim=1)
            z = (a * alpha.unsqueeze(2)).sum(1)
            beta = torch.sigmoid(h @ p["decoder.f_beta.weight"] + p["decoder.f_beta.bias"])
            x = torch.cat([emb, beta * z], 1)
            alphas.append(alpha)
        else:
            x = emb
        h, c = torch.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
        logits.append((h * masks[t]) @ p["decoder.output.weight"] + p["decoder.output.bias"])
    logits = torch.stack(logits, 1)  # (B, T, V)
    ce = F.cross_entropy(logits[real], targets[real])
    penalty = torch.zeros((), dtype=a.dtype)
    if att and cfg["alpha_c"] > 0:
        alphas = torch.stack(alphas, 1) * real.unsqueeze(2).to(a.dtype)  # (B, T, P)
        rows = torch.tensor([len(cap) > 0 for cap in caps])
        per_caption = ((1.0 - alphas.sum(1)) ** 2).mean(1)  # mean over the grid, as the tutorial
        penalty = cfg["alpha_c"] * per_caption[rows].mean()
    return ce + penalty, ce, penalty, int(real.sum())


def run_case(cfg, B, T):
    params_np, feats_np, masks_np, caps = make_inputs(cfg, B, T)
    dt = torch.float64
    params = {k: torch.tensor(v, dtype=dt, requires_grad=True) for k, v in params_np.items()}
    feats = torch.tensor(feats_np, dtype=dt)
    masks = [torch.tensor(m, dtype=dt) for m in masks_np]
    loss, ce, pen, tokens = forward(cfg, params, feats, masks, caps, T)
    loss.backward()
    out = []
    for k, (name, shape) in enumerate(param_specs(cfg)):
        g = params[name].grad.detach().numpy().reshape(-1)
        n = g.size
        r = uniform(5000 + k, (n,), -1.0, 1.0).astype(np.float64)
        idx = ints(6000 + k, min(64, n), n)
        out.append({
            "name": name,
            "shape": list(shape),
            "norm": float(np.linalg.norm(g)),
            "projection": float(g @ r),
            "indices": [int(i) for i in idx],
            "samples": [float(g[i]) for i in idx],
        })
    return {
        "config": cfg, "batch": B, "steps": T,
        "loss": float(loss), "cross_entropy": float(ce), "penalty": float(pen), "tokens": tokens,
        "params": out,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="model/testdata/decoder/parity.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    base = {"vocab_size": 1000, "feature_dim": 512, "grid_cells": 49, "embed_dim": 512,
            "attention_dim": 512, "hidden_dim": 512, "dropout": 0.5, "alpha_c": 1.0}
    cases = []
    for arch in ("attention", "showtell"):
        cfg = dict(base, arch=arch)
        case = run_case(cfg, 32, 16)
        print("%s: loss %.9f (CE %.9f + penalty %.9f), %d tokens" %
              (arch, case["loss"], case["cross_entropy"], case["penalty"], case["tokens"]), file=sys.stderr)
        cases.append(case)
    doc = {
        "source": "tools/decoder_reference.py, PyTorch %s, float64 autograd on float32-rounded inputs" % torch.__version__,
        "cases": cases,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch reference for captionctl's beam search (infer/captioner_search.go).

Reads a captionctl model file and a features file, captions every image by
beam search of width K = 1, 3, 5 and writes the JSON fixture that
infer/beam_parity_test.go checks the Go Captioner against, without
PyTorch:

  go test ./infer -run TestBeamPyTorchParity -beam-parity-write /tmp/beam
  for arch in attention showtell; do
    /usr/bin/python3 tools/beam_reference.py --model /tmp/beam/$arch/model.safetensors \
        --features /tmp/beam/$arch/features.safetensors --out infer/testdata/beam/$arch.json
  done

Everything here is written independently of the Go code:

- The model file is parsed by hand (the `safetensors` module may be
  missing): 8-byte little-endian header length, JSON header ("__metadata__"
  with the config and vocabulary as JSON strings; per tensor dtype, shape,
  data_offsets), raw little-endian data. Decoder tensors are F32 under the
  names of tools/decoder_reference.py's param_specs, weights stored (in, out).
- The decoder step is the equations of model/decoder_params.go in ordinary
  PyTorch, in float64 on the float32 weights and features, the LSTM being
  torch.lstm_cell on the concatenated input [embedding; β⊙z] with the
  per-gate tensors concatenated into PyTorch's (4H, in) layout, as
  decoder_reference.py does.
- Beam search is sgrvinod's caption_image_beam_search: the scores of all
  live hypotheses × all words are flattened and the top K taken; a
  hypothesis ending in <end> completes; the score is the sum of the
  log-softmax log-probabilities. With captionctl's rules: <pad>, <start>
  and <unk> are never emitted; at most max_len decoder steps; when no
  hypothesis completed, the best partial one is the answer (caption.py
  crashes there); candidates that tie rank by lower word id, then by
  better-ranked parent (torch.topk leaves ties unspecified).

  Two variants are computed. "images" is captionctl's fixed-width beam: the
  K best candidates decide which <end>s complete, and the K best candidates
  not ending in <end> stay live (the beam stays K wide), until K have
  completed. "sgrvinod" is caption.py's shrinking beam: the top k
  candidates over the k live rows, of which those ending in <end> complete
  and the rest stay live, so the beam loses one row per completion and the
  search stops when it is empty. Both return the best completed hypothesis
  (the first found on a tie).

For each image the fixture also gives "margin": the smallest score gap
between two candidates on either side of a ranking decision during the
search (and between the best and second-best answers); a Go run in float32
can only legitimately differ from this float64 run where it is ~1e-5. And it
gives the sha256 of the weights and features read (see weights_sha256), which
the Go test checks against what it generates.
"""

import argparse
import hashlib
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decoder_reference import param_specs  # noqa: E402

PAD, START, END, UNK = 0, 1, 2, 3

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64}


def read_safetensors(path):
    """(tensors by name as numpy arrays, metadata dict) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        lo, hi = info["data_offsets"]
        dt = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        tensors[name] = np.frombuffer(raw[base + lo:base + hi], dtype=dt).reshape(info["shape"])
    return tensors, meta


class Decoder:
    """The decoder of model/decoder_params.go, one step at a time, float64."""

    def __init__(self, cfg, tensors):
        self.cfg = cfg
        self.att = cfg["arch"] == "attention"
        p = {}
        for name, shape in param_specs(cfg):
            t = tensors[name]
            if tuple(t.shape) != tuple(shape):
                raise SystemExit("tensor %s has shape %s, want %s" % (name, t.shape, shape))
            p[name] = torch.tensor(t.astype(np.float64))
        self.p = p
        gates = "ifgo"
        if self.att:
            self.w_ih = torch.cat([torch.cat([p["decoder.lstm.%s.input.weight" % g],
                                              p["decoder.lstm.%s.context.weight" % g]], 0).t() for g in gates], 0)
        else:
            self.w_ih = torch.cat([p["decoder.lstm.%s.input.weight" % g].t() for g in gates], 0)
        self.w_hh = torch.cat([p["decoder.lstm.%s.hidden.weight" % g].t() for g in gates], 0)
        self.b_ih = torch.cat([p["decoder.lstm.%s.bias" % g] for g in gates], 0)
        self.b_hh = torch.zeros_like(self.b_ih)

    def start(self, a):
        """Initial (h, c) and the attention cache for features a (B, P, F)."""
        p = self.p
        mean = a.mean(1)
        if self.att:
            h = torch.tanh(mean @ p["decoder.init_h.weight"] + p["decoder.init_h.bias"])
            c = torch.tanh(mean @ p["decoder.init_c.weight"] + p["decoder.init_c.bias"])
            u = a @ p["decoder.attention.encoder.weight"] + p["decoder.attention.encoder.bias"]
            return h, c, u
        x0 = mean @ p["decoder.image.weight"] + p["decoder.image.bias"]
        zero = torch.zeros(a.shape[0], self.cfg["hidden_dim"], dtype=a.dtype)
        h, c = torch.lstm_cell(x0, (zero, zero), self.w_ih, self.w_hh, self.b_ih, self.b_hh)
        return h, c, None

    def step(self, a, u, h, c, words):
        """Logits (B, V) and the new (h, c) after the previous words (B)."""
        p = self.p
        emb = F.embedding(torch.tensor(words, dtype=torch.long), p["decoder.embedding.weight"])
        if self.att:
            e = F.relu(u + (h @ p["decoder.attention.decoder.weight"]).unsqueeze(1)) @ p["decoder.attention.score.weight"]
            alpha = F.softmax(e, dim=1)
            z = (a * alpha.unsqueeze(2)).sum(1)
            beta = torch.sigmoid(h @ p["decoder.f_beta.weight"] + p["decoder.f_beta.bias"])
            x = torch.cat([emb, beta * z], 1)
        else:
            x = emb
        h, c = torch.lstm_cell(x, (h, c), self.w_ih, self.w_hh, self.b_ih, self.b_hh)
        return h @ p["decoder.output.weight"] + p["decoder.output.bias"], h, c


def ranked(scores):
    """Candidates (parent, word) of a (k, V) score array, best first:
    score descending, then lower word, then lower parent; -inf dropped."""
    k, V = scores.shape
    parents, words = np.meshgrid(np.arange(k), np.arange(V), indexing="ij")
    s, parents, words = scores.ravel(), parents.ravel(), words.ravel()
    keep = np.isfinite(s)
    s, parents, words = s[keep], parents[keep], words[keep]
    order = np.lexsort((parents, words, -s))
    return s[order], parents[order], words[order]


def gap(s, i):
    """Score gap between ranked candidates i−1 and i (inf past the end)."""
    if i <= 0 or i >= len(s):
        return float("inf")
    return float(s[i - 1] - s[i])


def beam_search(dec, feat, K, max_len, shrink):
    """Best caption of one image: (words, score, complete, margin)."""
    a = torch.tensor(feat, dtype=torch.float64).unsqueeze(0)
    h, c, u = dec.start(a)
    live = [([], 0.0)]  # (words, log-prob), row r of h and c
    prev = [START]
    finished = []
    margin = float("inf")
    width = K
    for t in range(max_len):
        n = len(live)
        aa = a.expand(n, -1, -1)
        uu = u.expand(n, -1, -1) if u is not None else None
        logits, h, c = dec.step(aa, uu, h, c, prev)
        logp = F.log_softmax(logits, dim=1).numpy()
        logp[:, [PAD, START, UNK]] = -np.inf
        scores = np.array([lp for _, lp in live])[:, None] + logp
        s, parents, words = ranked(scores)
        if shrink:
            # caption.py: the top k (k = the live rows) over k × V.
            top = min(width, len(s))
            margin = min(margin, gap(s, top))
            chosen = range(top)
            completes = [i for i in chosen if words[i] == END]
            keeps = [i for i in chosen if words[i] != END]
            width -= len(completes)
        else:
            # captionctl: <end> within the top K completes; the K best
            # candidates not ending in <end> stay live.
            completes = [i for i in range(min(K, len(s))) if words[i] == END]
            margin = min(margin, gap(s, K))
            keeps = [i for i in range(len(s)) if words[i] != END][:K]
            if len(keeps) == K:
                nonend = s[words != END]
                margin = min(margin, gap(nonend, K))
        for i in completes:
            finished.append((live[parents[i]][0], float(s[i])))
        live = [(live[parents[i]][0] + [int(words[i])], float(s[i])) for i in keeps]
        prev = [int(words[i]) for i in keeps]
        rows = torch.tensor([int(parents[i]) for i in keeps], dtype=torch.long)
        if shrink:
            if width == 0:
                break
        elif len(finished) >= K or not keeps:
            break
        h, c = h[rows], c[rows]
    pool = finished if finished else live
    complete = bool(finished)
    # Stable: the first found (or better-ranked live row) wins a tie.
    best = sorted(range(len(pool)), key=lambda i: -pool[i][1])
    if len(best) > 1:
        margin = min(margin, pool[best[0]][1] - pool[best[1]][1])
    words, score = pool[best[0]]
    return words, score, complete, margin


def weights_sha256(cfg, tensors):
    """sha256 over the decoder tensors in canonical order: name, a zero
    byte, the float32 values little-endian (infer/beam_parity_test.go's
    beamParityDigests)."""
    h = hashlib.sha256()
    for name, _ in param_specs(cfg):
        h.update(name.encode("utf-8") + b"\0")
        h.update(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="captionctl model file (safetensors)")
    ap.add_argument("--features", required=True, help="safetensors file with F32 'features' (n, P, F)")
    ap.add_argument("--out", required=True, help="the JSON fixture to write (infer/testdata/beam/ARCH.json)")
    ap.add_argument("--max-len", type=int, default=12)
    ap.add_argument("--beams", default="1,3,5")
    args = ap.parse_args()
    torch.set_num_threads(2)

    tensors, meta = read_safetensors(args.model)
    if meta.get("format") != "captionctl/1":
        raise SystemExit("%s: format %r, not a captionctl/1 model file" % (args.model, meta.get("format")))
    cfg = json.loads(meta["config"])
    vocab = json.loads(meta["vocab"])["tokens"]
    if len(vocab) != cfg["vocab_size"]:
        raise SystemExit("vocabulary of %d tokens, config says %d" % (len(vocab), cfg["vocab_size"]))
    dec = Decoder(cfg, tensors)
    feats, _ = read_safetensors(args.features)
    features_sha256 = hashlib.sha256(np.ascontiguousarray(feats["features"], dtype="<f4").tobytes()).hexdigest()
    feats = feats["features"].astype(np.float64)
    if feats.shape[1:] != (cfg["grid_cells"], cfg["feature_dim"]):
        raise SystemExit("features are %s, the model wants (n, %d, %d)" % (feats.shape, cfg["grid_cells"], cfg["feature_dim"]))

    cases = []
    for K in [int(k) for k in args.beams.split(",")]:
        case = {"beam": K, "images": [], "sgrvinod": []}
        for key, shrink in (("images", False), ("sgrvinod", True)):
            for i in range(feats.shape[0]):
                words, score, complete, margin = beam_search(dec, feats[i], K, args.max_len, shrink)
                case[key].append({"tokens": words, "score": score, "complete": complete, "margin": min(margin, 1e3)})
        imgs = case["images"]
        lens = sorted(len(x["tokens"]) for x in imgs)
        same = sum(x["tokens"] == y["tokens"] for x, y in zip(imgs, case["sgrvinod"]))
        print("beam %d: lengths %s; %d incomplete; min margin %.2g; %d/%d as the shrinking beam" % (
            K, lens, sum(not x["complete"] for x in imgs), min(x["margin"] for x in imgs), same, len(imgs)),
            file=sys.stderr)
        print("  e.g. %s" % " | ".join(" ".join(vocab[w] for w in x["tokens"]) for x in imgs[:3]), file=sys.stderr)
        cases.append(case)
    doc = {
        "source": "tools/beam_reference.py, PyTorch %s, float64 on the float32 model and features" % torch.__version__,
        "weights_sha256": weights_sha256(cfg, tensors),
        "features_sha256": features_sha256,
        "max_len": args.max_len,
        "cases": cases,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()

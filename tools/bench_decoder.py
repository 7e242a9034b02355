#!/usr/bin/python3
"""Time one training step (forward + backward) of the Show, Attend and Tell
decoder in PyTorch at its best, the reference captionctl's fused decoder is
measured against (tools/bench_decoder.sh runs both side by side).

The decoder is the sgrvinod tutorial's (relu attention MLP, f_beta gate,
LSTMCell on [embedding; gated context], dropout, linear output), with the
two speed-ups a careful user applies: the attention's encoder projection
W_a·a is computed once per batch rather than once per step, and like the
tutorial each step runs only the captions still running (captions sorted
by length, a shrinking batch). The loss is cross-entropy over the real
tokens plus the doubly stochastic penalty.

Batches are the Go benchmark's (model/decoder_bench_test.go,
benchLengths): batch B, at most T steps, caption b has T+1 tokens for
b = 0 and 2 + (7b mod T) otherwise; random words and features.

Prints "pytorch-<config> <captions/s>", the best of --iters timed steps
after two warm-up steps.

    /usr/bin/python3 tools/bench_decoder.py --config small --threads 2
"""

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    # vocab, feature dim, grid, embed = attention = hidden dims
    "small": (2000, 512, 7, 256),
    "big": (10000, 2048, 14, 512),
}


class Decoder(nn.Module):
    def __init__(self, vocab, feat, dim, dropout=0.5):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.encoder_att = nn.Linear(feat, dim)
        self.decoder_att = nn.Linear(dim, dim, bias=False)
        self.full_att = nn.Linear(dim, 1, bias=False)
        self.init_h = nn.Linear(feat, dim)
        self.init_c = nn.Linear(feat, dim)
        self.f_beta = nn.Linear(dim, feat)
        self.lstm = nn.LSTMCell(dim + feat, dim)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, vocab)

    def forward(self, a, captions, lengths):
        # a (B, P, F); captions (B, T+1) sorted by length, longest first;
        # lengths = tokens per caption.
        B, P, _ = a.shape
        steps = [n - 1 for n in lengths]
        T = max(steps)
        mean = a.mean(1)
        h, c = torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))
        att1 = self.encoder_att(a)  # once per batch
        emb = self.embedding(captions)
        logits, targets, alphas = [], [], torch.zeros(B, P)
        for t in range(T):
            bt = sum(s > t for s in steps)
            hb = h[:bt]
            e = self.full_att(F.relu(att1[:bt] + self.decoder_att(hb).unsqueeze(1))).squeeze(2)
            alpha = F.softmax(e, dim=1)
            z = (a[:bt] * alpha.unsqueeze(2)).sum(1)
            z = torch.sigmoid(self.f_beta(hb)) * z
            h, c = self.lstm(torch.cat([emb[:bt, t], z], 1), (hb, c[:bt]))
            logits.append(self.fc(self.dropout(h)))
            targets.append(captions[:bt, t + 1])
            alphas = alphas + F.pad(alpha, (0, 0, 0, B - bt))
        loss = F.cross_entropy(torch.cat(logits), torch.cat(targets))
        return loss + ((1 - alphas) ** 2).sum(1).mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="small", choices=sorted(CONFIGS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    vocab, feat, grid, dim = CONFIGS[args.config]
    B, T = args.batch, args.steps
    lengths = [T + 1 if b == 0 else 2 + (7 * b) % T for b in range(B)]
    lengths.sort(reverse=True)
    captions = torch.randint(4, vocab, (B, T + 1))
    a = torch.rand(B, grid * grid, feat)
    dec = Decoder(vocab, feat, dim)
    dec.train()
    best = float("inf")
    for i in range(args.iters + 2):
        t0 = time.perf_counter()
        dec.zero_grad(set_to_none=True)
        dec(a, captions, lengths).backward()
        if i >= 2:
            best = min(best, time.perf_counter() - t0)
    print(f"pytorch-{args.config} {B / best:.2f}")


if __name__ == "__main__":
    main()

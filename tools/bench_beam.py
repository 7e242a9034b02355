#!/usr/bin/python3
"""Time beam search in PyTorch, the reference captionctl's batched beam
search is measured against (tools/bench_beam.sh runs both side by side).

The decoder is the issue's "big" configuration (vocabulary 10000,
2048-d features on a 14×14 grid, embedding = attention = LSTM = 512) with
random weights; the search is the sgrvinod tutorial's
caption_image_beam_search (one image at a time, the k live hypotheses as
a batch, top-k over the flattened k×V scores, the beam shrinking as
hypotheses end), at its best: the attention's encoder projection W_a·a is
computed once per image, not once per step. Beam 3, at most 20 words (a
random decoder practically never says <end>, so every search runs 20
steps, as captionctl's benchmark does).

Prints "pytorch-beam-one <ms/image>" (decode only, best of --iters
images) and, with --image FILE, "pytorch-beam-file <ms/image>": the same
plus reading the image and a random ResNet-101's features (torchvision,
resize 256, centre crop 224, adaptive average pool to 14×14), as
`captionctl caption` does.

    /usr/bin/python3 tools/bench_beam.py --threads 2
"""

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, FEAT, GRID, DIM = 10000, 2048, 14, 512
START, END = 1, 2


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(V, DIM)
        self.encoder_att = nn.Linear(FEAT, DIM)
        self.decoder_att = nn.Linear(DIM, DIM, bias=False)
        self.full_att = nn.Linear(DIM, 1, bias=False)
        self.init_h = nn.Linear(FEAT, DIM)
        self.init_c = nn.Linear(FEAT, DIM)
        self.f_beta = nn.Linear(DIM, FEAT)
        self.lstm = nn.LSTMCell(DIM + FEAT, DIM)
        self.fc = nn.Linear(DIM, V)


@torch.no_grad()
def beam_search(dec, a, k=3, max_len=20):
    """a (1, P, F): sgrvinod's caption_image_beam_search, W_a·a cached."""
    a = a.expand(k, *a.shape[1:])
    att1 = dec.encoder_att(a)
    mean = a.mean(1)
    h, c = torch.tanh(dec.init_h(mean)), torch.tanh(dec.init_c(mean))
    prev = torch.full((k,), START, dtype=torch.long)
    seqs = prev.unsqueeze(1)
    top_scores = torch.zeros(k, 1)
    complete, complete_scores = [], []
    for step in range(max_len):
        emb = dec.embedding(prev)
        e = dec.full_att(F.relu(att1 + dec.decoder_att(h).unsqueeze(1))).squeeze(2)
        alpha = F.softmax(e, dim=1)
        z = (a * alpha.unsqueeze(2)).sum(1)
        z = torch.sigmoid(dec.f_beta(h)) * z
        h, c = dec.lstm(torch.cat([emb, z], 1), (h, c))
        scores = F.log_softmax(dec.fc(h), dim=1)
        scores = top_scores.expand_as(scores) + scores
        if step == 0:
            top_scores, words = scores[0].topk(k)
        else:
            top_scores, words = scores.view(-1).topk(k)
        parents, nexts = words // V, words % V
        seqs = torch.cat([seqs[parents], nexts.unsqueeze(1)], 1)
        incomplete = [i for i, w in enumerate(nexts) if w != END]
        done = [i for i in range(len(nexts)) if i not in incomplete]
        if done:
            complete.extend(seqs[done].tolist())
            complete_scores.extend(top_scores[done])
        k -= len(done)
        if k == 0:
            break
        seqs = seqs[incomplete]
        h, c = h[parents[incomplete]], c[parents[incomplete]]
        a, att1 = a[parents[incomplete]], att1[parents[incomplete]]
        top_scores = top_scores[incomplete].unsqueeze(1)
        prev = nexts[incomplete]
    if not complete:
        return seqs[0].tolist()
    return complete[max(range(len(complete)), key=lambda i: complete_scores[i])]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--image", help="also time image file → features → beam")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    dec = Decoder().eval()
    a = torch.rand(1, GRID * GRID, FEAT)
    best = float("inf")
    for i in range(args.iters + 2):
        t0 = time.perf_counter()
        beam_search(dec, a)
        if i >= 2:
            best = min(best, time.perf_counter() - t0)
    print(f"pytorch-beam-one {best * 1000:.2f}")
    if args.image:
        import torchvision
        from PIL import Image
        from torchvision import transforms

        net = torchvision.models.resnet101()
        body = nn.Sequential(*list(net.children())[:-2], nn.AdaptiveAvgPool2d((GRID, GRID))).eval()
        tf = transforms.Compose([
            transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        best = float("inf")
        for i in range(args.iters + 2):
            t0 = time.perf_counter()
            with torch.no_grad():
                x = tf(Image.open(args.image).convert("RGB")).unsqueeze(0)
                feats = body(x).flatten(2).transpose(1, 2)  # (1, P, F)
            beam_search(dec, feats)
            if i >= 2:
                best = min(best, time.perf_counter() - t0)
        print(f"pytorch-beam-file {best * 1000:.2f}")


if __name__ == "__main__":
    main()

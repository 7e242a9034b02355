#!/usr/bin/python3
"""Time torchvision's ResNet feature extractor (everything up to layer4, as
captionctl's encoder) on random weights and a random batch, in three
variants: eager NCHW (what most scripts run), eager channels_last, and
TorchScript torch.jit.optimize_for_inference (batch norm folded, oneDNN
layouts: PyTorch at its best). Prints one line per variant:

    pytorch-<variant> <images/s>

best of --iters timed batches after two warm-up batches. Used by
tools/bench_encoder.sh; runs alone too:

    /usr/bin/python3 tools/bench_encoder.py --arch resnet50 --batch 8 --threads 2
"""

import argparse
import time

import torch
import torchvision


def timed(fn, x, iters):
    with torch.no_grad():
        for _ in range(3):  # TorchScript's profiling executor optimises on the 2nd run
            fn(x)
        best = float("inf")
        for _ in range(iters):
            t = time.perf_counter()
            fn(x)
            best = min(best, time.perf_counter() - t)
    return x.shape[0] / best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--variants", default="eager,channels_last,jit")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.arch)().eval()  # random init, no download
    body = torch.nn.Sequential(*list(model.children())[:-2]).eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    for variant in args.variants.split(","):
        if variant == "eager":
            rate = timed(body, x, args.iters)
        elif variant == "channels_last":
            cl = body.to(memory_format=torch.channels_last)
            rate = timed(cl, x.to(memory_format=torch.channels_last), args.iters)
            body = body.to(memory_format=torch.contiguous_format)
        elif variant == "jit":
            with torch.no_grad():
                scripted = torch.jit.optimize_for_inference(torch.jit.script(body.eval()))
            rate = timed(scripted, x, args.iters)
        else:
            raise SystemExit(f"unknown variant {variant}")
        print(f"pytorch-{variant} {rate:.2f}", flush=True)


if __name__ == "__main__":
    main()

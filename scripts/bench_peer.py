#!/usr/bin/python3
"""The Python peer of `smartcash-worker bench --backbone-only`: the same EfficientNet-B4 training
step (forward, backward, AdamW) through PyTorch's Python API, on torchvision's network.

Run it with the interpreter whose torch is the LibTorch the worker links (on Debian:
/usr/bin/python3 with python3-torch and python3-torchvision). Prints one JSON object.

The step: torchvision.models.efficientnet_b4().features up to its last stage (the 1x1 head conv
to 1792 channels is not part of the detector's backbone), P3/P4/P5 taken after stages 3, 5 and 7,
loss = sum of the mean squares of the three maps, backward, AdamW (lr 1e-4, weight decay 5e-4).
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--img-size", type=int, default=640)
    ap.add_argument("--micro-batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass
    torch.manual_seed(1)
    features = torchvision.models.efficientnet_b4().features[:8]
    features.train()
    optimizer = torch.optim.AdamW(features.parameters(), lr=1e-4, weight_decay=5e-4)
    images = torch.rand(args.micro_batch, 3, args.img_size, args.img_size)

    def step():
        optimizer.zero_grad()
        x = images
        loss = 0
        for i, stage in enumerate(features):
            x = stage(x)
            if i in (3, 5, 7):
                loss = loss + x.square().mean()
        loss.backward()
        optimizer.step()

    seconds = []
    for _ in range(args.steps + 1):
        t0 = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - t0)
    steady = statistics.median(seconds[1:])
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "impl": "pytorch-python",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "img_size": args.img_size,
        "micro_batch": args.micro_batch,
        "threads": args.threads,
        "parameters": sum(p.numel() for p in features.parameters()),
        "first_step_s": seconds[0],
        "step_s": steady,
        "images_per_s": args.micro_batch / steady,
        "peak_rss": peak_kib * 1024,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Our EfficientNet-B4 backbone with imported weights against torchvision's efficientnet_b4.

torchvision's efficientnet_b4() gets seeded random weights (no download): random batch-norm
affine parameters, and running statistics gathered from a few training-mode passes, so every
layer computes something non-trivial. Its state dict is written as safetensors (by hand: an
8-byte little-endian header length, a JSON header, the raw bytes) and with torch.save, and once
more under timm's names (a fixed rename table below; timm itself is not needed). torch.save
writes dict(state_dict): LibTorch 1.13 cannot unpickle the OrderedDict itself, and the worker's
error for one must say so. For each of the
four files, tests/worker/pretrained_dump loads it with the worker's loader (strict) and writes our
P3/P4/P5 for one input, in eval mode and in one training-mode forward with stochastic depth off,
plus the batch-norm running statistics after that forward. They must agree with torchvision's
features.3/5/7 outputs to 1e-4 of each tensor's largest magnitude.

Usage: pretrained_reference.py PATH/TO/pretrained_dump
"""

import copy
import json
import os
import struct
import subprocess
import sys
import tempfile

import torch
import torchvision

from reference_common import Failures

TOLERANCE = 1e-4  # of the reference tensor's largest magnitude
PYRAMID = {"p3": 3, "p4": 5, "p5": 7}  # torchvision features index after which each is taken

DTYPES = {torch.float32: "F32", torch.int64: "I64", torch.float64: "F64"}
TORCH_DTYPES = {"F32": torch.float32, "I64": torch.int64, "F64": torch.float64}


def save_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().cpu().contiguous().numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=TORCH_DTYPES[entry["dtype"]])
        out[name] = t.reshape(entry["shape"])
    return out


def timm_name(key, expands):
    """torchvision efficientnet key -> timm efficientnet key (timm's published layout)."""
    p = key.split(".")
    if p[0] == "classifier":
        return "classifier." + p[-1]
    if p[0] != "features":
        raise KeyError(key)
    stage = int(p[1])
    if stage == 0:  # stem: Conv2dNormActivation(conv, bn)
        return ("conv_stem." if p[2] == "0" else "bn1.") + ".".join(p[3:])
    if stage == 8:  # last 1x1 conv before the classifier
        return ("conv_head." if p[2] == "0" else "bn2.") + ".".join(p[3:])
    block, index, rest = p[2], int(p[4]), p[5:]
    prefix = f"blocks.{stage - 1}.{block}."
    if expands[(stage, block)]:
        # InvertedResidual: expand, depthwise, se, project
        parts = [("conv_pw", "bn1"), ("conv_dw", "bn2"), None, ("conv_pwl", "bn3")]
    else:
        # DepthwiseSeparableConv: depthwise, se, project
        parts = [("conv_dw", "bn1"), None, ("conv_pw", "bn2")]
    part = parts[index]
    if part is None:
        return prefix + {"fc1": "se.conv_reduce.", "fc2": "se.conv_expand."}[rest[0]] + rest[1]
    conv, bn = part
    return prefix + (conv + "." if rest[0] == "0" else bn + ".") + ".".join(rest[1:])


def randomise(model, generator):
    """Random batch-norm affine parameters and SE biases; running statistics from data."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=generator))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=generator))
            elif isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=generator))
        saved = {}
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                saved[m] = m.momentum
                m.momentum = None  # cumulative average over the passes below
        model.train()
        for _ in range(3):
            model.features(torch.rand(4, 3, 96, 96, generator=generator))
        for m, momentum in saved.items():
            m.momentum = momentum


def features(model, x):
    out = {}
    for i, layer in enumerate(model.features):
        x = layer(x)
        for name, index in PYRAMID.items():
            if index == i:
                out[name] = x
        if i == max(PYRAMID.values()):
            break
    return out


def compare(failures, what, ours, ref):
    scale = max(ref.abs().max().item(), 1e-12)
    diff = (ours - ref).abs().max().item()
    failures.expect(ours.shape == ref.shape, f"{what}: shape {tuple(ours.shape)} vs {tuple(ref.shape)}")
    if ours.shape == ref.shape:
        failures.expect(diff <= TOLERANCE * scale,
                        f"{what}: max |difference| {diff:.3g} > {TOLERANCE:g} x scale {scale:.3g}")
        print(f"{what}: max |difference| {diff:.3g}, scale {scale:.3g}, relative {diff / scale:.3g}")


def main():
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} PATH/TO/pretrained_dump", file=sys.stderr)
        sys.exit(2)
    tool = sys.argv[1]
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(20240613)
    torch.manual_seed(11)
    model = torchvision.models.efficientnet_b4()
    randomise(model, generator)
    model.eval()
    state = model.state_dict()
    expands = {}
    for stage in range(1, 8):
        for block, mbconv in enumerate(model.features[stage]):
            expands[(stage, str(block))] = len(mbconv.block) == 4

    images = torch.rand(2, 3, 128, 128, generator=generator)
    with torch.no_grad():
        ref_eval = features(model, images)
        trained = copy.deepcopy(model)
        for m in trained.modules():
            if isinstance(m, torchvision.ops.StochasticDepth):
                m.p = 0.0
        trained.train()
        ref_train = features(trained, images)
    after = trained.state_dict()

    failures = Failures("pretrained")
    timm_state = {timm_name(k, expands): v for k, v in state.items()}
    with tempfile.TemporaryDirectory(prefix="smartcash-pretrained-") as tmp:
        input_path = os.path.join(tmp, "input.safetensors")
        save_safetensors(input_path, {"images": images})
        files = {
            "torchvision.safetensors": ("torchvision", lambda p: save_safetensors(p, state)),
            "torchvision.pt": ("torchvision", lambda p: torch.save(dict(state), p)),
            "timm.safetensors": ("timm", lambda p: save_safetensors(p, timm_state)),
            "timm.pt": ("timm", lambda p: torch.save(timm_state, p)),
        }
        for name, (naming, write) in files.items():
            path = os.path.join(tmp, name)
            write(path)
            out = os.path.join(tmp, name + ".out")
            os.mkdir(out)
            done = subprocess.run([tool, path, input_path, out], capture_output=True, text=True,
                                  timeout=600)
            if done.returncode != 0:
                failures.expect(False, f"{name}: pretrained_dump failed: {done.stderr.strip()}")
                continue
            plan = json.loads(done.stdout.strip().splitlines()[-1])
            failures.expect(plan["naming"] == naming, f"{name}: detected {plan['naming']}")
            failures.expect(plan["input_normalization"] == "imagenet",
                            f"{name}: input normalization {plan['input_normalization']}")
            failures.expect(plan["loaded_tensors"] == plan["backbone_tensors"],
                            f"{name}: loaded {plan['loaded_tensors']} of {plan['backbone_tensors']}")
            failures.expect(not plan["missing"] and not plan["unexpected"] and not plan["wrong_shape"],
                            f"{name}: missing {plan['missing'][:3]}, unexpected "
                            f"{plan['unexpected'][:3]}, wrong shape {plan['wrong_shape'][:3]}")
            # features.8 (conv + 5 batch-norm tensors) and the classifier (weight, bias)
            failures.expect(plan["ignored"] == 8, f"{name}: {plan['ignored']} tensors ignored, not 8")
            ours_eval = load_safetensors(os.path.join(out, "eval.safetensors"))
            ours_train = load_safetensors(os.path.join(out, "train.safetensors"))
            for key in PYRAMID:
                compare(failures, f"{name} eval {key}", ours_eval[key], ref_eval[key])
                compare(failures, f"{name} train {key}", ours_train[key], ref_train[key])
            # The running statistics after the training-mode forward: the batch-norm momentum.
            ours_after = load_safetensors(os.path.join(out, "after_train.safetensors"))
            worst, worst_key = 0.0, ""
            for key, ref in after.items():
                if not key.endswith(("running_mean", "running_var")) or key.startswith("features.8"):
                    continue
                diff = ((ours_after[key] - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
                if diff > worst:
                    worst, worst_key = diff, key
            failures.expect(worst <= TOLERANCE, f"{name}: running statistics differ by {worst:.3g} "
                            f"of their scale at {worst_key}")
            print(f"{name} running statistics after one training forward: worst relative "
                  f"difference {worst:.3g} ({worst_key})")
        # state_dict() itself is an OrderedDict carrying _metadata, which LibTorch 1.13's
        # unpickler cannot rebuild: the worker must say how to save it instead.
        path = os.path.join(tmp, "ordered.pt")
        torch.save(state, path)
        out = os.path.join(tmp, "ordered.out")
        os.mkdir(out)
        done = subprocess.run([tool, path, input_path, out], capture_output=True, text=True,
                              timeout=600)
        if done.returncode != 0:
            failures.expect("dict(model.state_dict())" in done.stderr and path in done.stderr,
                            f"ordered.pt: the error does not say how to save it: {done.stderr}")
        else:
            compare(failures, "ordered.pt eval p5",
                    load_safetensors(os.path.join(out, "eval.safetensors"))["p5"], ref_eval["p5"])
    failures.exit()


if __name__ == "__main__":
    main()

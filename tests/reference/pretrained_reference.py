"""Our EfficientNet-B4 backbone with imported weights against torchvision's efficientnet_b4.

torchvision's efficientnet_b4() gets seeded random weights (no download): random batch-norm
affine parameters, and running statistics gathered from a few training-mode passes, so every
layer computes something non-trivial. Its state dict is written as safetensors (by hand: an
8-byte little-endian header length, a JSON header, the raw bytes) and with torch.save, and once
more under timm's names (a fixed rename table below; timm itself is not needed). torch.save
writes dict(state_dict): LibTorch 1.13 cannot unpickle the OrderedDict itself, and the worker's
error for one must say so.

timm is not installed here, so the timm names are checked against timm's own layout of
efficientnet_b4 written down from timm's source (timm_efficientnet_b4_layout below): the renamed
state dict must list exactly those names, in timm's order, with timm's shapes. For each of the
four files, tests/worker/pretrained_dump loads it with the worker's loader (strict) and writes our
P3/P4/P5 for one input, in eval mode and in one training-mode forward with stochastic depth off,
plus the batch-norm running statistics after that forward. They must agree with torchvision's
features.3/5/7 outputs to 1e-4 of each tensor's largest magnitude.

Usage: pretrained_reference.py PATH/TO/pretrained_dump
"""

import copy
import json
import math
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


def timm_efficientnet_b4_layout():
    """[(name, shape)] of timm's efficientnet_b4 state dict, in its order (module registration
    order), written down from timm's source, huggingface/pytorch-image-models at commit
    01419346ca79f2c5612d991d00ec80d9262fadf1; independent of timm_name above:

    * timm/models/efficientnet.py: efficientnet_b4() is _gen_efficientnet(channel_multiplier=1.4,
      depth_multiplier=1.8) with arch_def ds_r1_k3_s1_e1_c16, ir_r2_k3_s2_e6_c24, ir_r2_k5_s2_e6_c40,
      ir_r3_k3_s2_e6_c80, ir_r3_k5_s1_e6_c112, ir_r4_k5_s2_e6_c192, ir_r1_k3_s1_e6_c320 (all
      _se0.25), stem_size 32 and num_features round_chs_fn(1280); EfficientNet.__init__ registers
      conv_stem, bn1, blocks, conv_head, bn2, classifier (a Linear after global pooling).
    * timm/models/_efficientnet_builder.py: round_channels = make_divisible(c x multiplier, 8,
      round_limit 0.9); stage repeats ceil(r x depth_multiplier); each stage an nn.Sequential in
      blocks; the SE ratio is divided by the block's exp_ratio (se_from_exp False).
    * timm/models/_efficientnet_blocks.py: DepthwiseSeparableConv registers conv_dw, bn1, se,
      conv_pw, bn2; InvertedResidual conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3, with mid =
      make_divisible(in x exp_ratio); SqueezeExcite conv_reduce, conv_expand (1x1, with bias), rd =
      round(in x rd_ratio). Convolutions from create_conv2d have no bias.
    * timm/layers/norm_act.py: BatchNormAct2d is an nn.BatchNorm2d (its act and drop hold no
      tensors).
    """
    def make_divisible(v, divisor=8, round_limit=0.9):
        new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
        return new_v + divisor if new_v < round_limit * v else new_v

    def chs(c):
        return make_divisible(c * 1.4)

    def bn(name, c):
        return [(f"{name}.weight", (c,)), (f"{name}.bias", (c,)), (f"{name}.running_mean", (c,)),
                (f"{name}.running_var", (c,)), (f"{name}.num_batches_tracked", ())]

    def se(prefix, c, rd):
        return [(f"{prefix}se.conv_reduce.weight", (rd, c, 1, 1)), (f"{prefix}se.conv_reduce.bias", (rd,)),
                (f"{prefix}se.conv_expand.weight", (c, rd, 1, 1)), (f"{prefix}se.conv_expand.bias", (c,))]

    # (block type, repeats, kernel, expansion, channels) per stage; every block has se 0.25.
    arch = [("ds", 1, 3, 1, 16), ("ir", 2, 3, 6, 24), ("ir", 2, 5, 6, 40), ("ir", 3, 3, 6, 80),
            ("ir", 3, 5, 6, 112), ("ir", 4, 5, 6, 192), ("ir", 1, 3, 6, 320)]
    stem = chs(32)
    layout = [("conv_stem.weight", (stem, 3, 3, 3))] + bn("bn1", stem)
    c_in = stem
    for stage, (kind, repeats, k, e, c) in enumerate(arch):
        c_out = chs(c)
        for block in range(math.ceil(repeats * 1.8)):
            p = f"blocks.{stage}.{block}."
            if kind == "ds":
                rd = round(c_in * 0.25)
                layout += [(p + "conv_dw.weight", (c_in, 1, k, k))] + bn(p + "bn1", c_in)
                layout += se(p, c_in, rd)
                layout += [(p + "conv_pw.weight", (c_out, c_in, 1, 1))] + bn(p + "bn2", c_out)
            else:
                mid = make_divisible(c_in * e)
                rd = round(mid * 0.25 / e)
                layout += [(p + "conv_pw.weight", (mid, c_in, 1, 1))] + bn(p + "bn1", mid)
                layout += [(p + "conv_dw.weight", (mid, 1, k, k))] + bn(p + "bn2", mid)
                layout += se(p, mid, rd)
                layout += [(p + "conv_pwl.weight", (c_out, mid, 1, 1))] + bn(p + "bn3", c_out)
            c_in = c_out
    head = chs(1280)
    layout += [("conv_head.weight", (head, c_in, 1, 1))] + bn("bn2", head)
    layout += [("classifier.weight", (1000, head)), ("classifier.bias", (1000,))]
    return layout


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
    # The names the files below carry as timm's are timm's: every tensor of timm's layout, in its
    # order, with its shape.
    ours_layout = [(k, tuple(v.shape)) for k, v in timm_state.items()]
    timm_layout = timm_efficientnet_b4_layout()
    first = next((i for i, (a, b) in enumerate(zip(ours_layout, timm_layout)) if a != b),
                 min(len(ours_layout), len(timm_layout)))
    failures.expect(ours_layout == timm_layout,
                    f"timm names: {len(ours_layout)} tensors for timm's {len(timm_layout)}; first "
                    f"difference at {first}: ours {ours_layout[first:first + 2]}, timm's "
                    f"{timm_layout[first:first + 2]}")
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

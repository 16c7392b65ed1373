"""Our complete IoU (worker/train/loss.cpp, the box term of the detection loss) against
torchvision.ops.complete_box_iou, on random box pairs, identical boxes and one pair worked out
by hand; and its gradient with respect to the predicted box (cx, cy, w, h) against autograd
through torchvision.ops.complete_box_iou_loss (1 - CIoU), which, like YOLOv5's bbox_iou, takes
the aspect weight alpha = v / (1 - IoU + v) as a constant (computed under no_grad). The script
also checks that the random pairs tell the two apart: with alpha differentiated, most of the
gradients would miss the reference by far more than the tolerance.

Boxes are drawn in grid units, the scale the loss works at (sides 0.25 to 16 cells). The two
implementations place their 1e-7 guards against division by zero differently (ours adds it to
heights and to the union, torchvision only to the enclosing diagonal and to alpha's
denominator), so they agree to 1e-5 rather than to the last bit.
"""

import math

import torch
import torchvision

from reference_common import Failures, run_tool, tool_from_argv

TOL = 1e-5
GRAD_TOL = 1e-5  # relative to max(1, the reference gradient's largest component)


def to_corners(cxcywh):
    cx, cy, w, h = cxcywh.unbind(1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def random_pairs(n, generator):
    def one_set():
        centres = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 20
        sides = torch.exp(torch.empty(n, 2, dtype=torch.float64).uniform_(
            math.log(0.25), math.log(16), generator=generator))
        return torch.cat([centres, sides], 1)

    a = one_set()
    b = one_set()
    # Half of the pairs overlap: b's centre near a's; of those, half are also close in shape.
    half, quarter = n // 2, n // 4
    shift = torch.rand(half, 2, generator=generator, dtype=torch.float64) - 0.5
    b[:half, :2] = a[:half, :2] + shift * a[:half, 2:]
    stretch = 1 + (torch.rand(quarter, 2, generator=generator, dtype=torch.float64) - 0.5) * 0.4
    b[:quarter, :2] = a[:quarter, :2] + shift[:quarter] * 0.2 * a[:quarter, 2:]
    b[:quarter, 2:] = a[:quarter, 2:] * stretch
    return a, b


def ciou_loss_gradient(a, b, detach_alpha=True):
    """d(1 - CIoU)/d(a) for each row, a and b as (cx, cy, w, h); torchvision's loss, or (with
    detach_alpha False) the same loss with alpha left in the graph, written out here."""
    a = a.clone().requires_grad_(True)
    if detach_alpha:
        loss = torchvision.ops.complete_box_iou_loss(to_corners(a), to_corners(b), reduction="sum")
    else:
        pa, pb = to_corners(a), to_corners(b)
        diou_loss = torchvision.ops.distance_box_iou_loss(pa, pb)
        iou = torchvision.ops.box_iou(pa, pb).diagonal()
        w, h = a[:, 2], a[:, 3]
        wg, hg = b[:, 2], b[:, 3]
        v = (4 / math.pi**2) * (torch.atan(wg / hg) - torch.atan(w / h)) ** 2
        alpha = v / (1 - iou + v + 1e-7)
        loss = (diou_loss + alpha * v).sum()
    loss.backward()
    return a.grad


def hand_pair():
    """a: centre (0, 0), 2 x 2; b: centre (1, 0), 4 x 2, so a lies inside b.

    IoU = 4 / 8 = 1/2. The enclosing box is b: diagonal^2 = 4^2 + 2^2 = 20; centre distance^2 = 1.
    Aspect term v = 4/pi^2 (atan(4/2) - atan(2/2))^2 = 4/pi^2 atan(1/3)^2 (tan(x - y) =
    (2 - 1) / (1 + 2)), alpha = v / (1 - IoU + v), so CIoU = 1/2 - 1/20 - v^2 / (1/2 + v).
    """
    v = 4 / math.pi**2 * math.atan(1 / 3) ** 2
    value = 0.5 - 1 / 20 - v * v / (0.5 + v)
    return [0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 4.0, 2.0], value


def main():
    tool = tool_from_argv()
    checks = Failures("complete IoU vs torchvision.ops.complete_box_iou")
    generator = torch.Generator().manual_seed(20240613)
    a, b = random_pairs(400, generator)
    # Identical boxes: CIoU is 1.
    same = a[:20].clone()
    a = torch.cat([a, same])
    b = torch.cat([b, same])
    hand_a, hand_b, hand_value = hand_pair()
    a = torch.cat([a, torch.tensor([hand_a], dtype=torch.float64)])
    b = torch.cat([b, torch.tensor([hand_b], dtype=torch.float64)])

    answer = run_tool(tool, "ciou", {"a": a.tolist(), "b": b.tolist()})
    ours = answer["ciou"]
    ref = torchvision.ops.complete_box_iou(to_corners(a), to_corners(b)).diagonal().tolist()
    checks.expect(len(ours) == len(ref), f"{len(ours)} values for {len(ref)} pairs")
    for i, (o, r) in enumerate(zip(ours, ref)):
        checks.close(o, r, TOL, f"pair {i} a={a[i].tolist()} b={b[i].tolist()}")
    for i in range(400, 420):
        checks.close(ours[i], 1.0, TOL, f"identical boxes {a[i].tolist()}")
        checks.close(ref[i], 1.0, 1e-6, f"torchvision on identical boxes {a[i].tolist()}")
    checks.close(ours[-1], hand_value, 1e-6, "hand-computed pair, ours")
    checks.close(ref[-1], hand_value, 1e-6, "hand-computed pair, torchvision")
    # The pairs span the range that matters: disjoint (CIoU < 0) to near-identical.
    checks.expect(min(ref) < -0.3 and max(ref[:400]) > 0.8, f"CIoU range {min(ref)}..{max(ref)}")

    # Gradients, on the random pairs: d CIoU / d a = -d loss / d a. (Identical boxes and the hand
    # pair share edges, where min and max have no derivative and each side picks its own.)
    ours_grad = torch.tensor(answer["grad"], dtype=torch.float64)
    checks.expect(ours_grad.shape == (len(a), 4), f"gradient shape {tuple(ours_grad.shape)}")
    ref_grad = -ciou_loss_gradient(a[:400], b[:400])
    undetached = -ciou_loss_gradient(a[:400], b[:400], detach_alpha=False)
    told_apart = 0
    for i in range(400):
        scale = max(1.0, float(ref_grad[i].abs().max()))
        miss = float((ours_grad[i] - ref_grad[i]).abs().max())
        checks.expect(miss <= GRAD_TOL * scale,
                      f"gradient of pair {i} a={a[i].tolist()} b={b[i].tolist()}: ours "
                      f"{ours_grad[i].tolist()}, torchvision {ref_grad[i].tolist()}")
        told_apart += float((undetached[i] - ref_grad[i]).abs().max()) > 10 * GRAD_TOL * scale
    checks.expect(told_apart >= 150, f"only {told_apart} of 400 pairs tell a detached alpha "
                  "from a differentiated one")
    checks.exit()


if __name__ == "__main__":
    main()

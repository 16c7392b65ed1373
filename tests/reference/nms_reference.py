"""Our class-aware NMS (worker/eval/nms.cpp) against torchvision.ops.batched_nms.

Random trials: clustered, overlapping boxes of four classes with distinct scores, at several IoU
thresholds. Both sides see the same float32 boxes. A same-class pair whose IoU lies within 1e-4
of the threshold is broken up (one box dropped) before the comparison, because there float
rounding, not the rule, would decide. Exact cases: integer boxes at IoU exactly 0.25, 0.5 and
0.75, where the rule itself decides: a box is suppressed only by IoU strictly above the
threshold.
"""

import torch
import torchvision

from reference_common import Failures, run_tool, tool_from_argv

THRESHOLDS = [0.3, 0.45, 0.5, 0.6, 0.7]
NEAR = 1e-4


def random_trial(generator, n=160, classes=4, clusters=10):
    centres = torch.rand(clusters, 2, generator=generator) * 300
    pick = torch.randint(0, clusters, (n,), generator=generator)
    sides = 20 + torch.rand(n, 2, generator=generator) * 60
    xy = centres[pick] + (torch.rand(n, 2, generator=generator) - 0.5) * 40
    boxes = torch.cat([xy - sides / 2, xy + sides / 2], 1).to(torch.float32)
    scores = torch.randperm(n * 7, generator=generator)[:n].to(torch.float32) / (n * 7)
    labels = torch.randint(0, classes, (n,), generator=generator)
    return boxes, scores, labels


def drop_near_ties(boxes, scores, labels, threshold):
    """Removes boxes until no same-class pair has an IoU within NEAR of the threshold."""
    while True:
        iou = torchvision.ops.box_iou(boxes.double(), boxes.double())
        same = labels[:, None] == labels[None, :]
        near = same & ((iou - threshold).abs() < NEAR)
        near.fill_diagonal_(False)
        if not near.any():
            return boxes, scores, labels
        drop = int(near.nonzero()[0, 1])
        keep = torch.ones(len(boxes), dtype=torch.bool)
        keep[drop] = False
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]


def compare_all(tool, checks, problems):
    """problems: (boxes, scores, labels, threshold, what[, max_det]); all answered by one run of
    the tool. Returns how many boxes torchvision keeps in each, before any max_det."""
    requests = []
    for b, s, l, t, _, *max_det in problems:
        request = {"boxes": b.tolist(), "scores": s.tolist(), "classes": l.tolist(), "iou": t}
        if max_det:
            request["max_det"] = max_det[0]
        requests.append(request)
    ours = run_tool(tool, "nms", requests)
    kept = []
    for (boxes, scores, labels, threshold, what, *max_det), answer in zip(problems, ours):
        ref = torchvision.ops.batched_nms(boxes, scores, labels, threshold).tolist()
        kept.append(len(ref))
        if max_det:
            ref = ref[: max_det[0]]
            what = f"{what}, max_det {max_det[0]}"
        checks.expect(answer["keep"] == ref, f"{what}, threshold {threshold}: ours keeps "
                      f"{answer['keep']}, torchvision keeps {ref}")
    return kept


def main():
    tool = tool_from_argv()
    checks = Failures("NMS vs torchvision.ops.batched_nms")
    generator = torch.Generator().manual_seed(4242)
    problems = []
    for trial in range(12):
        boxes, scores, labels = random_trial(generator)
        threshold = THRESHOLDS[trial % len(THRESHOLDS)]
        boxes, scores, labels = drop_near_ties(boxes, scores, labels, threshold)
        problems.append((boxes, scores, labels, threshold, f"random trial {trial}"))

    # Exact overlaps: each pair below is of one class; a lower-scored box at IoU exactly equal to
    # the threshold survives.
    exact = [
        ([0, 0, 10, 10], [0, 0, 10, 5]),  # IoU 1/2
        ([20, 0, 28, 8], [20, 0, 28, 2]),  # IoU 1/4
        ([40, 0, 60, 10], [40, 0, 55, 10]),  # IoU 3/4
        ([70, 0, 80, 10], [70, 0, 80, 6]),  # IoU 3/5
    ]
    boxes = torch.tensor([b for pair in exact for b in pair], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2], dtype=torch.float32)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    exact_problems = [(boxes, scores, labels, t, "exact overlaps") for t in [0.25, 0.5, 0.75]]

    # max_det below the number of survivors (and once above it).
    limited = []
    for (boxes, scores, labels, threshold, what), max_det in zip(problems, [10, 20, 50, 100, 500]):
        limited.append((boxes, scores, labels, threshold, what, max_det))

    kept = compare_all(tool, checks, problems + exact_problems + limited)
    # The random trials must really exercise suppression (and keep plenty).
    total = sum(len(p[0]) for p in problems)
    kept_random = sum(kept[: len(problems)])
    checks.expect(0.2 * total < kept_random < 0.8 * total, f"kept {kept_random} of {total}")
    # At each threshold the pair at exactly that IoU survives, those above it do not.
    exact_kept = kept[len(problems): len(problems) + len(exact_problems)]
    checks.expect(exact_kept == [5, 6, 8], f"exact overlaps keep {exact_kept}")
    # max_det: more survive than it allows (except the 500), and cutting the candidates to max_det
    # before suppressing would keep something else.
    for (boxes, scores, labels, threshold, what, max_det), survivors in zip(
            limited, kept[len(problems) + len(exact_problems):]):
        checks.expect((survivors > max_det) == (max_det < 500),
                      f"{what}: {survivors} survive, max_det {max_det}")
        if max_det < 500:
            top = torch.argsort(scores, descending=True)[:max_det]
            cut_first = top[torchvision.ops.batched_nms(boxes[top], scores[top], labels[top],
                                                        threshold)].tolist()
            full = torchvision.ops.batched_nms(boxes, scores, labels, threshold)[:max_det].tolist()
            checks.expect(cut_first != full,
                          f"{what}: max_det {max_det} does not tell kept from candidates")
    checks.exit()


if __name__ == "__main__":
    main()

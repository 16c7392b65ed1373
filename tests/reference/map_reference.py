"""Our mAP (worker/eval/metrics.cpp) against a COCO-style evaluation written here from the
published definition of COCO's box AP, in exact rational arithmetic:

* per class, detections ranked by descending score;
* at each IoU threshold t in 0.50, 0.55, ..., 0.95, greedy matching down the ranking: a detection
  takes the not yet matched ground truth of its class and image with the highest IoU, if that IoU
  is >= t; it is then a true positive, otherwise (a duplicate, a miss) a false positive;
* precision and recall after each rank; the precision envelope (at each rank the highest precision
  at that rank or any later one); sampled at the 101 recall points 0, 1/100, ..., 1 (a point takes
  the envelope at the first rank whose recall reaches it, 0 when none does); AP is their mean;
* AP@0.5 is AP at t = 0.5, AP@0.5:0.95 the mean over the ten thresholds; a mean over classes
  (overall, per detection layer) leaves out the classes that have no ground truth, as COCO does
  (their precision is -1 there), and keeps classes with ground truth but no detections (AP 0).

Conventions the test fixes on both sides rather than leaving to chance:

* Ties in score: COCO ranks equal scores by image id, then by their order within the image. Our
  evaluate keeps the input order, and validation lists detections image by image, so the test
  hands our side the detections in image order. Scores are multiples of 1/64 so that many tie,
  across and within images.
* No cap on detections per image (COCO keeps the best 100 of each image; validation keeps all
  that eval.max_detections lets through, and evaluate scores all it is given).
* Recall points are exactly k/100. (pycocotools builds them with np.linspace, which puts some,
  e.g. 0.35 and 0.70, one rounding step above k/100; we follow the definition.)
* A detection at the same IoU with two unmatched ground truths takes the first listed (COCO's
  code would take the last; the definition does not say).
* No IoU lies within 1e-5 of a threshold without equalling it (ours computes IoU in floating
  point, the reference exactly). IoUs exactly at a threshold count as matches on both sides.

Box corners are multiples of 1/8 pixel, so both sides see exactly the same numbers.

Six generated data sets of 30 images, and one built by hand. The script fails unless the data
holds what each rule is tested on, checked by evaluating the reference with the rule changed and
requiring a different answer:

* every generated set has a detection at IoU exactly 0.65, 0.7, 0.9 and 0.95 with the only truth
  it overlaps (planted in images 0 to 3). Our IoU is a float: at these four thresholds the float
  nearest to the exact IoU lies below the threshold (0.95 -> 0.94999999), so without the 1e-6
  allowance ours would call them misses; the reference evaluated that way must differ.
* the hand-built set has detections at equal IoU with two unmatched truths, where taking the last
  truth instead of the first changes AP, and an image with 130 detections whose 30 true positives
  rank below 100 false positives, where COCO's cap of 100 per image changes AP.
"""

import random
import struct
from fractions import Fraction

from reference_common import Failures, run_tool, tool_from_argv

THRESHOLDS = [Fraction(50 + 5 * i, 100) for i in range(10)]
# The thresholds as metrics.cpp computes them (0.50 + 0.05 i, in double).
FLOAT_THRESHOLDS = [0.50 + 0.05 * i for i in range(10)]
RECALL_POINTS = [Fraction(k, 100) for k in range(101)]
LAYERS = [("layer_1", 0, 7), ("layer_2", 7, 7), ("layer_3", 14, 3)]
NUM_CLASSES = 17
TOL = 1e-6


def float32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def float_iou(a, b):
    """IoU as eval::iou computes it: in double from the float corners, rounded to float."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float32(inter / union)


# The exact thresholds whose nearest float lies below the threshold metrics.cpp compares with: an
# IoU exactly there needs the allowance. (0.65, 0.7, 0.9 and 0.95.)
ROUNDED_BELOW = [t for t, f in zip(THRESHOLDS, FLOAT_THRESHOLDS) if float32(float(t)) < f]


def iou(a, b):
    a = [Fraction(v) for v in a]
    b = [Fraction(v) for v in b]
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return Fraction(0)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def average_precision(tp_flags, num_gt):
    precision, recall = [], []
    tp = 0
    for rank, hit in enumerate(tp_flags, start=1):
        tp += hit
        precision.append(Fraction(tp, rank))
        recall.append(Fraction(tp, num_gt))
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    total = Fraction(0)
    for point in RECALL_POINTS:
        reached = [i for i, r in enumerate(recall) if r >= point]
        if reached:
            total += precision[reached[0]]
    return total / len(RECALL_POINTS)


def reference_evaluation(detections, truths, tie="first", per_image_cap=None, float_iou_only=False):
    """Per class (AP@0.5, AP@0.5:0.95) as Fractions, None for a class without ground truth.

    The keywords change a rule, to check that the data tells the rule apart: tie="last" gives a
    detection at equal IoU with two truths the last listed (COCO's code); per_image_cap keeps
    only the best that many detections of each image (COCO's 100); float_iou_only compares the
    float IoU with the double threshold as ours would without its allowance."""
    if per_image_cap is not None:
        by_image = {}
        for d in sorted(detections, key=lambda d: (-d["score"], d["index"])):
            by_image.setdefault(d["image"], []).append(d)
        detections = [d for kept in by_image.values() for d in kept[:per_image_cap]]
    per_class = []
    for c in range(NUM_CLASSES):
        gts = {}
        for t in truths:
            if t["cls"] == c:
                gts.setdefault(t["image"], []).append(t["box"])
        num_gt = sum(len(v) for v in gts.values())
        if num_gt == 0:
            per_class.append(None)
            continue
        # COCO's order: descending score, ties by image id, then by position within the image.
        ranked = sorted((d for d in detections if d["cls"] == c),
                        key=lambda d: (-d["score"], d["image"], d["index"]))
        aps = []
        for t, float_t in zip(THRESHOLDS, FLOAT_THRESHOLDS):
            matched = {image: [False] * len(boxes) for image, boxes in gts.items()}
            flags = []
            for d in ranked:
                best, best_iou = None, None
                for g, box in enumerate(gts.get(d["image"], [])):
                    if matched[d["image"]][g]:
                        continue
                    if float_iou_only:
                        o = float_iou(d["box"], box)
                        reached = o >= float_t
                    else:
                        o = iou(d["box"], box)
                        reached = o >= t
                    better = best is None or o > best_iou or (tie == "last" and o == best_iou)
                    if reached and better:
                        best, best_iou = g, o
                if best is not None:
                    matched[d["image"]][best] = True
                flags.append(best is not None)
            aps.append(average_precision(flags, num_gt))
        per_class.append((aps[0], sum(aps) / len(aps)))
    return per_class


def mean_defined(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


# ---- the data set -----------------------------------------------------------------------------


def grid(v):
    """Rounds to 1/8 pixel."""
    return round(v * 8) / 8


def random_box(rng, size=640):
    w = grid(rng.uniform(16, 200))
    h = grid(rng.uniform(16, 200))
    x = grid(rng.uniform(0, size - w))
    y = grid(rng.uniform(0, size - h))
    return [x, y, x + w, y + h]


def jitter(rng, box, amount):
    w, h = box[2] - box[0], box[3] - box[1]
    out = [grid(box[0] + rng.gauss(0, amount) * w), grid(box[1] + rng.gauss(0, amount) * h),
           grid(box[2] + rng.gauss(0, amount) * w), grid(box[3] + rng.gauss(0, amount) * h)]
    if out[2] - out[0] < 1:
        out[2] = out[0] + 1
    if out[3] - out[1] < 1:
        out[3] = out[1] + 1
    return out


def at_exact_iou(box, t):
    """A box sharing `box`'s left, top and bottom edges whose IoU with it is exactly t (when w t is
    a multiple of 1/8)."""
    w = box[2] - box[0]
    return [box[0], box[1], box[0] + w * t, box[3]]


def planted_pair(rng, t):
    """A truth and a detection at IoU exactly t (t a multiple of 1/20): the truth's width is a
    multiple of 5/2, so that its fraction t is a multiple of 1/8."""
    w = 2.5 * rng.randint(8, 80)
    h = grid(rng.uniform(16, 200))
    x = grid(rng.uniform(0, 640 - w))
    y = grid(rng.uniform(0, 640 - h))
    truth = [x, y, x + w, y + h]
    det = at_exact_iou(truth, float(t))
    assert iou(det, truth) == t
    return truth, det


def acceptable(det, truths):
    """False when the detection would make the comparison depend on float rounding or on an
    unstated tie rule (see the module's notes)."""
    overlaps = [iou(det["box"], t["box"]) for t in truths
                if t["image"] == det["image"] and t["cls"] == det["cls"]]
    nonzero = [o for o in overlaps if o > 0]
    if len(set(nonzero)) != len(nonzero):
        return False
    for o in nonzero:
        for t in THRESHOLDS:
            if o != t and abs(o - t) < Fraction(1, 100000):
                return False
    return True


def make_dataset(seed, images=30):
    rng = random.Random(seed)
    plant_rng = random.Random(1000 + seed)
    classes = list(range(NUM_CLASSES))
    rng.shuffle(classes)
    with_gt = classes[:12]  # the rest have no ground truth
    fp_only = classes[12:14]  # of those, two still get detections
    truths, detections = [], []
    for image in range(images):
        image_truths = []
        for _ in range(rng.randint(0, 6)):
            c = rng.choice(with_gt)
            box = random_box(rng)
            image_truths.append({"image": image, "cls": c, "box": box})
            if rng.random() < 0.2:  # a second object of the class close by
                image_truths.append({"image": image, "cls": c, "box": jitter(rng, box, 0.35)})
        truths += image_truths
        candidates = []
        for t in image_truths:
            if rng.random() < 0.8:
                candidates.append((t["cls"], jitter(rng, t["box"], rng.choice([0.02, 0.05, 0.1, 0.2]))))
            if rng.random() < 0.25:  # duplicate
                candidates.append((t["cls"], jitter(rng, t["box"], 0.05)))
            if rng.random() < 0.1:  # right place, wrong class
                candidates.append((rng.choice(classes), jitter(rng, t["box"], 0.05)))
            if rng.random() < 0.15:  # exactly at a threshold
                candidates.append((t["cls"], at_exact_iou(t["box"], rng.choice([0.5, 0.55, 0.75, 0.95]))))
        for _ in range(rng.randint(0, 4)):  # false positives, some in classes without truths
            candidates.append((rng.choice(with_gt + fp_only), random_box(rng)))
        rng.shuffle(candidates)
        scored = [(c, box, rng.randint(1, 63) / 64) for c, box in candidates]
        if image < len(ROUNDED_BELOW):
            # Planted (from a generator of its own, so the rest stays as it was): a truth whose
            # only detection lies at IoU exactly at a threshold that float rounding puts the IoU
            # below.
            c = plant_rng.choice(with_gt)
            box, det = planted_pair(plant_rng, ROUNDED_BELOW[image])
            image_truths.append({"image": image, "cls": c, "box": box})
            truths.append(image_truths[-1])
            scored.append((c, det, plant_rng.randint(1, 63) / 64))
        for c, box, score in scored:
            det = {"image": image, "cls": c, "score": score, "box": box, "index": len(detections)}
            if acceptable(det, image_truths):
                detections.append(det)
    return truths, detections, set(with_gt)


# ---- the comparison ---------------------------------------------------------------------------


def request_for(truths, detections):
    return {
        "detections": [{k: d[k] for k in ("image", "cls", "score", "box")} for d in detections],
        "truths": truths,
        "class_names": [f"c{i}" for i in range(NUM_CLASSES)],
        "layers": [{"name": n, "first_class": f, "num_classes": k} for n, f, k in LAYERS],
    }


def hand_built_dataset():
    """Equal-IoU truths and an image with more than 100 detections (see the module's notes)."""
    truths, detections = [], []

    def detect(image, cls, score, box):
        detections.append({"image": image, "cls": cls, "score": score, "box": box,
                           "index": len(detections)})

    # Images 0 and 1, class 0: truths A = [0, 0, 40, 40] and B = A moved 24 right. The first
    # detection, A moved 12 right, overlaps each by 28 x 40: IoU 1120 / 2080 with both. The second
    # is A itself (IoU 1/4 with B). Taking the first listed truth, image 0 (A listed first) gets
    # one hit and one miss, image 1 (B listed first) two hits; taking the last, the reverse.
    for image, first, second in [(0, "A", "B"), (1, "B", "A")]:
        boxes = {"A": [0, 0, 40, 40], "B": [24, 0, 64, 40]}
        truths += [{"image": image, "cls": 0, "box": boxes[name]} for name in (first, second)]
        detect(image, 0, 0.9 - 0.2 * image, [12, 0, 52, 40])
        detect(image, 0, 0.8 - 0.2 * image, boxes["A"])
    # Image 2, class 8: 30 truths on a grid in the left half; 100 false positives in the right
    # half scored above 30 exact hits.
    for k in range(30):
        x, y = 10 + 50 * (k % 6), 10 + 50 * (k // 6)
        truths.append({"image": 2, "cls": 8, "box": [x, y, x + 40, y + 40]})
    for k in range(100):
        x, y = 340 + 48 * (k % 6), 10 + 36 * (k // 6)
        detect(2, 8, 0.99 - 0.004 * k, [x, y, x + 40, y + 40])
    for k in range(30):
        detect(2, 8, 0.5 - 0.01 * k, truths[-30 + k]["box"])
    return truths, detections


def compare(checks, what, truths, detections, ref, ours):
    for c in range(NUM_CLASSES):
        row = ours["classes"][c]
        if ref[c] is None:
            checks.expect(row["ap50"] is None and row["ap50_95"] is None,
                          f"{what}, class {c} has no ground truth: ours gives {row['ap50']}, {row['ap50_95']}")
            continue
        checks.close(row["ap50"], float(ref[c][0]), TOL, f"{what}, class {c} AP@0.5")
        checks.close(row["ap50_95"], float(ref[c][1]), TOL, f"{what}, class {c} AP@0.5:0.95")

    ap50 = [None if r is None else r[0] for r in ref]
    ap50_95 = [None if r is None else r[1] for r in ref]
    checks.close(ours["map50"], float(mean_defined(ap50)), TOL, f"{what}, mAP@0.5")
    checks.close(ours["map50_95"], float(mean_defined(ap50_95)), TOL, f"{what}, mAP@0.5:0.95")
    for layer, (name, first, count) in zip(ours["layers"], LAYERS):
        m50 = mean_defined(ap50[first:first + count])
        m50_95 = mean_defined(ap50_95[first:first + count])
        checks.close(layer["map50"], None if m50 is None else float(m50), TOL, f"{what}, {name} mAP@0.5")
        checks.close(layer["map50_95"], None if m50_95 is None else float(m50_95), TOL,
                     f"{what}, {name} mAP@0.5:0.95")


def check_dataset(checks, seed, truths, detections, with_gt, ours):
    ref = reference_evaluation(detections, truths)
    what = f"data set {seed}"
    compare(checks, what, truths, detections, ref, ours)

    # The data set has what the comparison is about.
    scores = [d["score"] for d in detections]
    checks.expect(len(scores) - len(set(scores)) > 20, f"{what}: too few tied scores")
    checks.expect(any(d["cls"] not in with_gt for d in detections),
                  f"{what}: no detection of a class without ground truth")
    defined = [float(r[0]) for r in ref if r is not None]
    checks.expect(0.2 < min(defined) and max(defined) < 1 and len(set(defined)) > 5,
                  f"{what}: AP@0.5 per class too uniform to tell rules apart: {defined}")
    # IoUs exactly at each threshold whose float rounds below it, and they decide: without the
    # allowance (float IoU >= threshold) the answer differs.
    at = set()
    for d in detections:
        for t in truths:
            if t["image"] == d["image"] and t["cls"] == d["cls"]:
                o = iou(d["box"], t["box"])
                if o in ROUNDED_BELOW:
                    at.add(o)
    checks.expect(at == set(ROUNDED_BELOW),
                  f"{what}: IoUs exactly at {sorted(map(float, at))}, wanted each of "
                  f"{sorted(map(float, ROUNDED_BELOW))}")
    checks.expect(reference_evaluation(detections, truths, float_iou_only=True) != ref,
                  f"{what}: comparing float IoUs without the allowance changes nothing")


def check_hand_built(checks, truths, detections, ours):
    ref = reference_evaluation(detections, truths)
    compare(checks, "hand-built set", truths, detections, ref, ours)
    per_image = {}
    for d in detections:
        per_image[d["image"]] = per_image.get(d["image"], 0) + 1
    checks.expect(max(per_image.values()) > 100, "hand-built set: no image with over 100 detections")
    checks.expect(reference_evaluation(detections, truths, tie="last") != ref,
                  "hand-built set: the last truth at equal IoU gives the same AP as the first")
    checks.expect(reference_evaluation(detections, truths, per_image_cap=100) != ref,
                  "hand-built set: keeping 100 detections per image changes nothing")


def main():
    tool = tool_from_argv()
    checks = Failures("mAP vs a COCO-style evaluation")
    datasets = [make_dataset(seed) for seed in range(6)]
    hand_truths, hand_detections = hand_built_dataset()
    answers = run_tool(tool, "evaluate", [request_for(t, d) for t, d, _ in datasets] +
                       [request_for(hand_truths, hand_detections)])
    for seed, ((truths, detections, with_gt), ours) in enumerate(zip(datasets, answers)):
        check_dataset(checks, seed, truths, detections, with_gt, ours)
        print(f"data set {seed}: 30 images, {len(truths)} ground truths, "
              f"{len(detections)} detections")
    check_hand_built(checks, hand_truths, hand_detections, answers[-1])
    print(f"hand-built set: 3 images, {len(hand_truths)} ground truths, "
          f"{len(hand_detections)} detections")
    checks.exit()


if __name__ == "__main__":
    main()

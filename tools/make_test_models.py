#!/usr/bin/python3
"""Writes tiny TorchScript models with known outputs, and their manifests, for the C++ tests.

Run with Debian's Python (torch 1.13): /usr/bin/python3 tools/make_test_models.py --out DIR

Every model here computes a fixed, hand-designed function (no training, no randomness), so the
tests can state the exact mask they expect. See docs/model-manifest.md for the manifest fields.

Models:
  test-bright          foreground = red channel > 0.5 (the model undoes the manifest's ImageNet
                       mean/std first), 64x64, nchw, stretch.
  test-bright-nhwc     the same function with an nhwc input and a [1,h,w,1] output.
  test-bright-letterbox  the same function, letterboxed with pad value 255 (the padding itself is
                       "bright": if it were not cropped away, it would leak into the mask).
  test-disc            ignores its input; returns (coarse, fine): coarse is all ones at 16x16,
                       fine a disc at 64x64 (centre 32,32, radius 20, pixel centres); -1 = fine.
  test-person-prob     person logits = 100 * (green - 0.5) from a 1x1 conv with weights stored
                       in float16 (the loader must cast them on CPU); output_activation sigmoid.
  test-yolo            64x64 letterbox, 3 classes, fixed predictions [1,39,5] and prototypes
                       [1,32,32,32]; see YOLO_BOXES below for the boxes and the expected result.
  test-detector        a person detector (NanoDet's output format): 64x64 stretch, strides 8 and
                       16, 3 classes, 4 bins per side, fixed outputs; see DETECTOR_CELLS below.
  test-bright-trap     test-bright's function, with two traps for the fleet tests (issue 11): an
                       image that is mostly green makes forward raise (a task that throws inside
                       `segmentor serve`), one that is mostly blue makes it spin for a long time
                       (TRAP_SPIN products of 256x256 matrices, ~60 s on one core of the build
                       machine: a task in flight long enough to kill the worker holding it, even
                       after starting another replica first). Any other image gets test-bright's
                       mask.
"""

import argparse
import json
import os
import sys

import torch
from torch import nn

INPUT_SIZE = 64
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# test-yolo boxes, in input pixels (cx, cy, w, h), with their class scores over 3 classes.
# Only the first survives: the second overlaps it with IoU 480/544 = 0.88 > 0.7 and a lower score
# (suppressed by NMS), the third's best class is 1 (not a person), the fourth scores 0.3 < 0.5, the
# fifth is all zeros. Prototype channel 0 is +8 everywhere and every instance's coefficients are
# (1, 0, ..., 0), so an instance's mask is exactly its box once cropped to the box.
# Expected: for a 128x64 (w x h) source, scale 0.5, resized 64x32, pad_y 16, the kept box
# x 16..48, y 24..40 (input) becomes x 32..96, y 16..48 in the source (end-exclusive).
YOLO_NUM_CLASSES = 3
YOLO_PROTO_SIZE = 32
YOLO_BOXES = [
    # cx, cy, w, h, scores per class
    (32.0, 32.0, 32.0, 16.0, (0.90, 0.05, 0.01)),  # kept person: x 16..48, y 24..40
    (34.0, 32.0, 32.0, 16.0, (0.80, 0.05, 0.01)),  # person, x 18..50: suppressed by NMS
    (12.0, 32.0, 16.0, 24.0, (0.40, 0.95, 0.01)),  # best class 1: ignored
    (50.0, 32.0, 20.0, 24.0, (0.30, 0.01, 0.01)),  # person below conf_threshold
    (0.0, 0.0, 0.0, 0.0, (0.0, 0.0, 0.0)),         # empty anchor
]

# test-detector cells: (stride, row, column, class scores, bin logits per side l, t, r, b). A
# side's distance is sum_k k * softmax(logits)_k bins, times the stride; the cell centre is
# ((column + 0.5) * stride, (row + 0.5) * stride). With a person score >= 0.5:
#   A: centre (36, 28); l uniform = 1.5 bins = 12, t 16, r 8, b 24 -> box x 24..44, y 12..52, 0.9
#   B: centre (44, 28); l 2.5 bins = 20, t 16, r 0, b 24 -> the same box, 0.8: suppressed by NMS
#   D: centre (56, 8); l 16, t 0, r 0, b 16 -> box x 40..56, y 8..24, 0.6 (class 1 scores higher,
#      but it is still a person: Note [Person detector decode])
# Below 0.5 (a person only when PERSON_MIN_SCORE <= 0.4):
#   C: centre (8, 56); l 0, t 0, r 16, b 16 -> box x 8..24, y 56..64 (clipped), 0.4
DETECTOR_NUM_CLASSES = 3
DETECTOR_BINS = 4
DETECTOR_STRIDES = (8, 16)
_HOT = 30.0  # a logit this far above the others makes its bin's probability 1 in float32


def _one_hot(k):
    return [_HOT if i == k else 0.0 for i in range(DETECTOR_BINS)]


DETECTOR_CELLS = [
    (8, 3, 4, (0.9, 0.05, 0.0), ([0.0] * 4, _one_hot(2), _one_hot(1), _one_hot(3))),   # A
    (8, 3, 5, (0.8, 0.05, 0.0), ([0.0, 0.0, _HOT, _HOT], _one_hot(2), _one_hot(0), _one_hot(3))),  # B
    (16, 3, 0, (0.4, 0.9, 0.0), (_one_hot(0), _one_hot(0), _one_hot(1), _one_hot(1))),  # C
    (16, 0, 3, (0.6, 0.95, 0.0), (_one_hot(1), _one_hot(0), _one_hot(0), _one_hot(1))),  # D
]


class FixedDetector(nn.Module):
    """Returns fixed person-detector outputs (scores, bins per stride), whatever the input."""

    def __init__(self):
        super().__init__()
        for stride in DETECTOR_STRIDES:
            cells = (INPUT_SIZE // stride) ** 2
            scores = torch.zeros(1, cells, DETECTOR_NUM_CLASSES)
            bins = torch.zeros(1, cells, 4 * DETECTOR_BINS)
            for s, row, col, cls, sides in DETECTOR_CELLS:
                if s != stride:
                    continue
                cell = row * (INPUT_SIZE // stride) + col
                scores[0, cell] = torch.tensor(cls)
                bins[0, cell] = torch.tensor([v for side in sides for v in side])
            self.register_buffer(f"scores{stride}", scores)
            self.register_buffer(f"bins{stride}", bins)

    def forward(self, x: torch.Tensor):
        return (self.scores8.to(x.dtype), self.bins8.to(x.dtype), self.scores16.to(x.dtype),
                self.bins16.to(x.dtype))


class Bright(nn.Module):
    """Foreground where the (de-normalised) red channel is above 0.5."""

    def __init__(self, mean: float, std: float, nhwc: bool):
        super().__init__()
        self.mean = mean
        self.std = std
        self.nhwc = nhwc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nhwc:
            red = x[:, :, :, 0:1]  # [1,h,w,1]
        else:
            red = x[:, 0:1, :, :]  # [1,1,h,w]
        red = red * self.std + self.mean
        return (red > 0.5).to(x.dtype)


# test-bright-trap's spin: 256x256 matrix products, about 5 ms each on one core of the build
# machine; the fleet test kills the worker a replica start-up (a second or two) after the task
# starts, so even a core several times faster leaves a wide margin.
TRAP_SPIN = 12000


class BrightTrap(nn.Module):
    """test-bright, but a mostly green image raises and a mostly blue one spins."""

    def __init__(self, mean, std, spin: int):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        # All 1/256: the product of two is itself, so the spin neither grows nor underflows.
        self.register_buffer("work", torch.full((256, 256), 1.0 / 256))
        self.spin = spin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = x * self.std.to(x.dtype) + self.mean.to(x.dtype)
        means = rgb.mean(dim=[0, 2, 3])
        red = float(means[0])
        green = float(means[1])
        blue = float(means[2])
        if green > 0.5 and red < 0.5 and blue < 0.5:
            raise RuntimeError("test-bright-trap: a green image (the test's poison input)")
        if blue > 0.5 and red < 0.5 and green < 0.5:
            work = self.work.to(x.dtype)
            acc = work
            for _ in range(self.spin):
                acc = torch.mm(acc, work)
            rgb = rgb + acc.sum() * 0.0  # keeps the loop from being optimised away
        return (rgb[:, 0:1, :, :] > 0.5).to(x.dtype)


class Disc(nn.Module):
    """Input-independent (coarse, fine) probability maps."""

    def __init__(self):
        super().__init__()
        coarse = torch.ones(1, 1, 16, 16)
        ys = torch.arange(INPUT_SIZE, dtype=torch.float32).view(-1, 1) + 0.5
        xs = torch.arange(INPUT_SIZE, dtype=torch.float32).view(1, -1) + 0.5
        fine = (((xs - 32.0) ** 2 + (ys - 32.0) ** 2) <= 20.0 ** 2).float().view(1, 1, 64, 64)
        self.register_buffer("coarse", coarse)
        self.register_buffer("fine", fine)

    def forward(self, x: torch.Tensor):
        return (self.coarse.to(x.dtype), self.fine.to(x.dtype))


class PersonProb(nn.Module):
    """Person logits from the green channel, through a float16-stored 1x1 conv."""

    def __init__(self):
        super().__init__()
        # Plain parameters and F.conv2d rather than nn.Conv2d: nn.Conv2d's TorchScript code lists
        # its constants in hash order, which would make the file differ from run to run.
        self.weight = nn.Parameter(torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1))
        self.bias = nn.Parameter(torch.tensor([-0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.weight, self.bias) * 100.0


class FixedYolo(nn.Module):
    """Returns fixed YOLO-seg predictions and prototypes, whatever the input."""

    def __init__(self):
        super().__init__()
        n = len(YOLO_BOXES)
        pred = torch.zeros(1, 4 + YOLO_NUM_CLASSES + 32, n)
        for i, (cx, cy, w, h, scores) in enumerate(YOLO_BOXES):
            pred[0, 0:4, i] = torch.tensor([cx, cy, w, h])
            pred[0, 4:4 + YOLO_NUM_CLASSES, i] = torch.tensor(scores)
            if w > 0:
                pred[0, 4 + YOLO_NUM_CLASSES, i] = 1.0  # coefficient of prototype 0
        proto = torch.zeros(1, 32, YOLO_PROTO_SIZE, YOLO_PROTO_SIZE)
        proto[0, 0] = 8.0
        proto[0, 1] = -3.0  # unused by the coefficients above; must not matter
        self.register_buffer("pred", pred)
        self.register_buffer("proto", proto)

    def forward(self, x: torch.Tensor):
        return (self.pred.to(x.dtype), self.proto.to(x.dtype))


def manifest(name, kind, **fields):
    out = {
        "name": name,
        "kind": kind,
        "input_width": INPUT_SIZE,
        "input_height": INPUT_SIZE,
        "is_test_model": True,
        "source": "tools/make_test_models.py (hand-written function, no trained weights)",
        "licence": "same as this repository",
    }
    out.update(fields)
    return out


def save(out_dir, module, meta):
    module.eval()
    scripted = torch.jit.script(module)
    name = meta["name"]
    scripted.save(os.path.join(out_dir, name + ".pt"))
    with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write <name>.pt and <name>.json")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)

    save(args.out, Bright(IMAGENET_MEAN[0], IMAGENET_STD[0], nhwc=False),
         manifest("test-bright", "foreground_probability", mean=IMAGENET_MEAN, std=IMAGENET_STD))
    save(args.out, Bright(IMAGENET_MEAN[0], IMAGENET_STD[0], nhwc=True),
         manifest("test-bright-nhwc", "foreground_probability", layout="nhwc",
                  mean=IMAGENET_MEAN, std=IMAGENET_STD))
    save(args.out, Bright(IMAGENET_MEAN[0], IMAGENET_STD[0], nhwc=False),
         manifest("test-bright-letterbox", "foreground_probability", resize="letterbox",
                  letterbox_pad_value=255, mean=IMAGENET_MEAN, std=IMAGENET_STD))
    save(args.out, BrightTrap(IMAGENET_MEAN, IMAGENET_STD, TRAP_SPIN),
         manifest("test-bright-trap", "foreground_probability", mean=IMAGENET_MEAN,
                  std=IMAGENET_STD))
    save(args.out, Disc(), manifest("test-disc", "foreground_probability", output_index=-1))

    person = PersonProb().half()  # stored as float16, like an fp16 export
    save(args.out, person,
         manifest("test-person-prob", "person_probability", output_activation="sigmoid",
                  weights_dtype="float16"))

    save(args.out, FixedYolo(),
         manifest("test-yolo", "yolo_seg", resize="letterbox", letterbox_pad_value=114,
                  num_classes=YOLO_NUM_CLASSES, person_class=0, conf_threshold=0.5,
                  iou_threshold=0.7,
                  source="tools/make_test_models.py: fixed boxes (see YOLO_BOXES there); kept "
                         "person box x 16..48, y 24..40 in input pixels"))

    save(args.out, FixedDetector(),
         manifest("test-detector", "person_detector", num_classes=DETECTOR_NUM_CLASSES,
                  person_class=0, conf_threshold=0.5, iou_threshold=0.6,
                  strides=list(DETECTOR_STRIDES), reg_bins=DETECTOR_BINS, box_margin=0.0,
                  source="tools/make_test_models.py: fixed cells (see DETECTOR_CELLS there); "
                         "person boxes x 24..44, y 12..52 and x 40..56, y 8..24 in input pixels"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Writes production-sized STAND-INS for RMBG-2.0 and YOLO11l-seg: TorchScript models with
generated (random, untrained) weights of about the real models' size and with their output
layouts, so `segmentor bench` sees a production-like memory and compute picture.

They segment nothing meaningful. Their names end in "-standin" and their manifests say
"generated stand-in, not a real model" everywhere they appear.

  rmbg2-standin         Swin-L backbone (timm 'swin_large_patch4_window12_384' built for 1024x1024,
                        pretrained=False, nothing downloaded) + an FPN decoder with context blocks
                        sized so the total is ~220 M parameters; output [1,1,1024,1024] logits
                        (manifest: sigmoid), like RMBG-2.0's last output.
  yolo11l-seg-standin   a YOLO-style conv net of ~27.6 M parameters at 640x640, 80 classes:
                        (predictions [1,116,8400], prototypes [1,32,160,160]). Class scores are
                        standardised logits shifted down, so only a few anchors pass the person
                        threshold per frame and NMS does realistic (small) work.

Usage (the GPU machine: torch 2.x + timm):
  python3 tools/make_standin_models.py --out models/cache
  FOREGROUND_SEG_MODEL_NAME=rmbg2-standin PEOPLE_SEG_MODEL_NAME=yolo11l-seg-standin segmentor bench
--small writes tiny versions (rmbg2-small-standin, yolo11l-seg-small-standin; a conv backbone in
place of Swin, no timm needed) for tests on a CPU with Debian's torch 1.13.
Prints parameter counts and conv/linear GMACs (attention matmuls not counted).
"""

import argparse
import os
import sys

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_export  # noqa: E402

STANDIN_SOURCE = "generated stand-in, not a real model (tools/make_standin_models.py)"
STANDIN_LICENCE = "same as this repository (random weights)"
RMBG_TARGET_PARAMS = 220_000_000
YOLO_TARGET_PARAMS = 27_600_000
NUM_CLASSES = 80
NUM_MASKS = 32


def count_params(module):
    return sum(p.numel() for p in module.parameters())


def conv_bn(c_in, c_out, k=3, s=1):
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.SiLU())


class Residual(nn.Module):
    """Two 3x3 conv-bn-silu with a skip: the unit both stand-ins grow by."""

    def __init__(self, c):
        super().__init__()
        self.a = conv_bn(c, c)
        self.b = conv_bn(c, c)

    def forward(self, x):
        return x + self.b(self.a(x))


# ---------------------------------------------------------------------------------------------
# rmbg2-standin

class SwinBackbone(nn.Module):
    """timm's Swin-L, run stage by stage; returns the four stages as NCHW maps (1/4 .. 1/32)."""

    def __init__(self, size, window):
        super().__init__()
        import timm  # only here: --small runs without it
        self.model = timm.create_model("swin_large_patch4_window12_384", pretrained=False,
                                       img_size=size, window_size=window, num_classes=0)
        self.channels = [192, 384, 768, 1536]

    def forward(self, x):
        x = self.model.patch_embed(x)  # timm >= 0.9: NHWC
        feats = []
        for stage in self.model.layers:
            x = stage(x)
            y = x
            if y.dim() == 3:  # timm < 0.9: [B, L, C]
                s = int(round(y.shape[1] ** 0.5))
                y = y.reshape(y.shape[0], s, s, y.shape[-1])
            feats.append(y.permute(0, 3, 1, 2).contiguous())  # NHWC -> NCHW
        return feats


class ConvBackbone(nn.Module):
    """--small: four strided conv stages in place of Swin (same strides, small channels)."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        layers, c_in = [], 3
        for i, c in enumerate(channels):
            layers.append(nn.Sequential(conv_bn(c_in, c, 3, 4 if i == 0 else 2), Residual(c)))
            c_in = c
        self.stages = nn.ModuleList(layers)

    def forward(self, x):
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class FpnDecoder(nn.Module):
    """Top-down FPN to 1/4, then two upsampling convs to full size and a 1-channel logit map.
    `context` residual blocks at 1/32 are where the stand-in's extra parameters live (cheap in
    compute there), sized to reach the target count."""

    def __init__(self, in_channels, widths, context):
        super().__init__()
        self.lateral = nn.ModuleList(conv_bn(c, w, 1) for c, w in zip(in_channels, widths))
        self.reduce = nn.ModuleList(conv_bn(widths[i + 1], widths[i], 1)
                                    for i in range(len(widths) - 1))
        self.refine = nn.ModuleList(nn.Sequential(Residual(w)) for w in widths)
        self.context = nn.Sequential(*[Residual(widths[-1]) for _ in range(context)])
        w0 = widths[0]
        self.up1 = conv_bn(w0, max(8, w0 // 2))
        self.up2 = conv_bn(max(8, w0 // 2), max(8, w0 // 4))
        self.out = nn.Conv2d(max(8, w0 // 4), 1, 3, 1, 1)

    def forward(self, feats):
        x = self.context(self.lateral[-1](feats[-1]))
        x = self.refine[-1](x)
        for i in range(len(feats) - 2, -1, -1):
            x = F.interpolate(self.reduce[i](x), scale_factor=2.0, mode="bilinear",
                              align_corners=False)
            x = self.refine[i](x + self.lateral[i](feats[i]))
        x = self.up1(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        x = self.up2(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        return self.out(x)


class RmbgStandin(nn.Module):
    def __init__(self, backbone, widths, context):
        super().__init__()
        self.backbone = backbone
        self.decoder = FpnDecoder(backbone.channels, widths, context)

    def forward(self, x):
        return self.decoder(self.backbone(x))


def build_rmbg(small, window):
    widths = [16, 32, 32, 32] if small else [128, 256, 512, 512]
    backbone = ConvBackbone([16, 32, 48, 64]) if small else SwinBackbone(1024, window)
    model = RmbgStandin(backbone, widths, 0)
    if not small:
        # Residual(512) adds 2 x 512 x 512 x 9 weights (+ BN): grow the context to the target.
        per_block = count_params(Residual(widths[-1]))
        missing = RMBG_TARGET_PARAMS - count_params(model)
        model = RmbgStandin(backbone, widths, max(0, round(missing / per_block)))
    return model


# ---------------------------------------------------------------------------------------------
# yolo11l-seg-standin

class YoloStandin(nn.Module):
    """Strides 8/16/32 -> 80x80 + 40x40 + 20x20 = 8400 anchors at 640; YOLO-seg outputs."""

    def __init__(self, size, widths, depth, extra):
        super().__init__()
        w = widths
        self.stem = nn.Sequential(conv_bn(3, w[0], 3, 2), conv_bn(w[0], w[1], 3, 2),
                                  *[Residual(w[1]) for _ in range(depth)])
        self.p3 = nn.Sequential(conv_bn(w[1], w[2], 3, 2), *[Residual(w[2]) for _ in range(depth)])
        self.p4 = nn.Sequential(conv_bn(w[2], w[3], 3, 2), *[Residual(w[3]) for _ in range(depth)])
        self.p5 = nn.Sequential(conv_bn(w[3], w[4], 3, 2),
                                *[Residual(w[4]) for _ in range(depth + extra)])
        self.up54 = conv_bn(w[4], w[3], 1)
        self.up43 = conv_bn(w[3], w[2], 1)
        self.n4 = Residual(w[3])
        self.n3 = Residual(w[2])
        outs = 4 + NUM_CLASSES + NUM_MASKS
        self.heads = nn.ModuleList(nn.Sequential(conv_bn(c, c), nn.Conv2d(c, outs, 1))
                                   for c in (w[2], w[3], w[4]))
        self.proto = nn.Sequential(conv_bn(w[2], w[2]), nn.Upsample(scale_factor=2.0),
                                   conv_bn(w[2], w[2]), nn.Conv2d(w[2], NUM_MASKS, 1))
        grids, strides = [], []
        for stride in (8, 16, 32):
            n = size // stride
            ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
            grids.append(torch.stack([xs, ys]).reshape(2, -1).float())
            strides.append(torch.full((1, n * n), float(stride)))
        self.register_buffer("grid", torch.cat(grids, 1).unsqueeze(0))      # [1,2,8400]
        self.register_buffer("stride", torch.cat(strides, 1).unsqueeze(0))  # [1,1,8400]

    def forward(self, x):
        p3 = self.p3(self.stem(x))
        p4 = self.p4(p3)
        p5 = self.p5(p4)
        n4 = self.n4(p4 + F.interpolate(self.up54(p5), scale_factor=2.0))
        n3 = self.n3(p3 + F.interpolate(self.up43(n4), scale_factor=2.0))
        raw = torch.cat([h(f).flatten(2) for h, f in zip(self.heads, (n3, n4, p5))], 2)
        raw = raw.float()
        xy = (self.grid + torch.sigmoid(raw[:, 0:2])) * self.stride
        wh = (torch.sigmoid(raw[:, 2:4]) * 4.0) ** 2 * self.stride
        logits = raw[:, 4:4 + NUM_CLASSES]
        # Standardised over anchors, shifted down: a person score > 0.5 needs z > 3.3, i.e. a few
        # anchors per frame, like a real detector on a frame with a person or two.
        z = (logits - logits.mean(2, keepdim=True)) / (logits.std(2, keepdim=True) + 1e-6)
        scores = torch.sigmoid(1.5 * z - 5.0)
        coefs = torch.tanh(raw[:, 4 + NUM_CLASSES:])
        pred = torch.cat([xy, wh, scores, coefs], 1).to(x.dtype)
        return pred, self.proto(n3)


def build_yolo(small):
    if small:
        return YoloStandin(128, [8, 16, 16, 24, 32], 1, 0), 128
    widths, depth = [64, 128, 256, 512, 512], 1  # 27.8 M, 75 GMACs (YOLO11l-seg: 27.6 M, ~71)
    model = YoloStandin(640, widths, depth, 0)
    per_block = count_params(Residual(widths[4]))
    extra = max(0, round((YOLO_TARGET_PARAMS - count_params(model)) / per_block))
    return YoloStandin(640, widths, depth, extra), 640


# ---------------------------------------------------------------------------------------------

def gmacs(model, example):
    """Multiply-accumulates of Conv2d and Linear layers for one forward of `example`."""
    total = [0]

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total[0] += output.numel() * k
        elif isinstance(module, nn.Linear):
            total[0] += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(example)
    for h in handles:
        h.remove()
    return total[0] / 1e9


def export(model, manifest, out_dir, device):
    model = model.eval().to(device)
    example = torch.rand(1, 3, manifest["input_height"], manifest["input_width"], device=device)
    params = count_params(model)
    macs = gmacs(model, example)
    with torch.no_grad():
        traced = torch.jit.trace(model, example, check_trace=False)
        outputs = traced(example)
    shapes = [list(t.shape) for t in (outputs if isinstance(outputs, tuple) else (outputs,))]
    traced = traced.cpu()
    paths = model_export.save_model(traced, manifest, out_dir)
    print(f"{manifest['name']}: {params / 1e6:.1f} M parameters, {macs:.1f} GMACs (conv+linear) "
          f"at {manifest['input_width']}x{manifest['input_height']}, outputs {shapes} -> "
          f"{paths[0]}")
    return params


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for <name>.pt and <name>.json")
    parser.add_argument("--small", action="store_true",
                        help="tiny versions for CPU tests (no timm needed)")
    parser.add_argument("--only", choices=["rmbg", "yolo"], help="write just one of the two")
    parser.add_argument("--window", type=int, default=16,
                        help="Swin window size at 1024x1024 (must divide 256, 128, 64 and 32: "
                             "timm's window 12 does not; BiRefNet pads to 12 instead)")
    parser.add_argument("--device", default="cpu", help="device to trace on (cuda is faster)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    suffix = "-small-standin" if args.small else "-standin"

    if args.only in (None, "rmbg"):
        size = 256 if args.small else 1024
        model = build_rmbg(args.small, args.window)
        export(model, {
            "name": "rmbg2" + suffix,
            "kind": "foreground_probability",
            "input_width": size,
            "input_height": size,
            "layout": "nchw",
            "pixel_scale": 1.0 / 255.0,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "resize": "stretch",
            "output_activation": "sigmoid",
            "mask_threshold": 0.5,
            "is_test_model": False,
            "source": STANDIN_SOURCE + ": Swin-L + FPN decoder sized like RMBG-2.0 (BiRefNet)",
            "licence": STANDIN_LICENCE,
        }, args.out, args.device)

    if args.only in (None, "yolo"):
        model, size = build_yolo(args.small)
        export(model, {
            "name": "yolo11l-seg" + suffix,
            "kind": "yolo_seg",
            "input_width": size,
            "input_height": size,
            "layout": "nchw",
            "pixel_scale": 1.0 / 255.0,
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
            "resize": "letterbox",
            "letterbox_pad_value": 114,
            "num_classes": NUM_CLASSES,
            "person_class": 0,
            "conf_threshold": 0.5,
            "iou_threshold": 0.7,
            "is_test_model": False,
            "source": STANDIN_SOURCE + ": conv net sized like YOLO11l-seg, YOLO-seg outputs",
            "licence": STANDIN_LICENCE,
        }, args.out, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

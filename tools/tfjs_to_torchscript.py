"""Converts a TensorFlow.js graph model (model.json + weight files) into a TorchScript module.

Like onnx_to_torchscript.py, it generates the source of a torch.nn.Module from the graph and
scripts it (Note [Generated TorchScript source] in model_export.py). Supported ops are those of
small mobile segmentation networks such as MediaPipe selfie segmentation: Conv2D,
DepthwiseConv2dNative, Conv2DBackpropInput, Add/AddV2/AddN, Mul, Relu, Relu6, Sigmoid, AvgPool,
ResizeBilinear, Identity.

Note [NHWC graph as NCHW module]
TF graphs are NHWC with HWIO kernels. The converted module is NCHW throughout, as LibTorch's
convolutions are: kernels are permuted once at conversion time, per-channel constants ([C]) become
[C, 1, 1] and rank-4 constants are permuted, so element-wise ops broadcast the same way. This is
exact because the graph has no reshapes or transposes (they are rejected). Input is [1, 3, H, W],
output [1, C, H, W].

Note [TF SAME padding]
TF's SAME padding puts the odd pixel after, not before: with stride 2 and an even input, a 3x3
kernel is padded (0, 1), which no symmetric PyTorch padding reproduces. Strided convolutions
therefore pad explicitly with the same_pad() helper, computed from the runtime size as TF does;
stride-1 convolutions with odd kernels are symmetric and use the convolution's own padding.
"""

import base64
import json
import os
import re

import numpy as np
import torch

import model_export
import onnx_to_torchscript

ConversionError = onnx_to_torchscript.ConversionError

SUPPORTED_OPS = ("Placeholder", "Const", "Identity", "Conv2D", "DepthwiseConv2dNative",
                 "Conv2DBackpropInput", "Add", "AddV2", "AddN", "Mul", "Relu", "Relu6", "Sigmoid",
                 "AvgPool", "ResizeBilinear")

_DTYPES = {"float32": np.float32, "int32": np.int32, "float16": np.float16, "uint8": np.uint8,
           "int16": np.int16, "uint16": np.uint16, "bool": np.bool_}


def read_weights(model_json, directory):
    """Decodes the weights manifest into {name: numpy array}. Float16-quantized weights keep
    their float16 values (lossless); uint8/uint16 affine quantization is dequantized to float32."""
    weights = {}
    for group in model_json["weightsManifest"]:
        blob = b"".join(open(os.path.join(directory, p), "rb").read() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(d) for d in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            if quant:
                stored = np.dtype(_DTYPES[quant["dtype"]])
            else:
                stored = np.dtype(_DTYPES[spec["dtype"]])
            nbytes = count * stored.itemsize
            if offset + nbytes > len(blob):
                raise ConversionError(f"weight {spec['name']} runs past the end of the weight data")
            array = np.frombuffer(blob, dtype=stored.newbyteorder("<"), count=count, offset=offset)
            offset += nbytes
            if quant and quant["dtype"] in ("uint8", "uint16"):
                array = array.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            weights[spec["name"]] = array.reshape(shape).copy()
        if offset != len(blob):
            raise ConversionError(f"{len(blob) - offset} bytes of weight data are unused")
    return weights


def _attr(node, key, default=None):
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "list" in value:
        return [int(i) for i in value["list"].get("i", [])]
    if "b" in value:
        return bool(value["b"])
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    return value


def _input_name(name):
    return re.sub(r":\d+$", "", name)


def _sorted_nodes(nodes):
    by_name = {n["name"]: n for n in nodes}
    order, state = [], {}

    def visit(name):
        # Iterative DFS: deep graphs would otherwise hit Python's recursion limit.
        stack = [(name, False)]
        while stack:
            current, done = stack.pop()
            if done:
                state[current] = 2
                order.append(by_name[current])
                continue
            if state.get(current) == 2:
                continue
            if state.get(current) == 1:
                raise ConversionError(f"cycle at {current}")
            if current not in by_name:
                raise ConversionError(f"undefined input {current}")
            state[current] = 1
            stack.append((current, True))
            for inp in reversed(by_name[current].get("input", [])):
                if inp.startswith("^"):
                    continue  # control dependency: no data
                dep = _input_name(inp)
                if state.get(dep) != 2:
                    if state.get(dep) == 1:
                        raise ConversionError(f"cycle at {dep}")
                    stack.append((dep, False))

    for node in nodes:
        if state.get(node["name"]) != 2:
            visit(node["name"])
    return order


_TEMPLATE = '''import torch
import torch.nn.functional as F


def same_pad(x: torch.Tensor, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int) -> torch.Tensor:
    # Note [TF SAME padding]: the odd pixel goes after.
    ih = x.size(2)
    iw = x.size(3)
    ph = max(((ih + sh - 1) // sh - 1) * sh + (kh - 1) * dh + 1 - ih, 0)
    pw = max(((iw + sw - 1) // sw - 1) * sw + (kw - 1) * dw + 1 - iw, 0)
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


class {class_name}(torch.nn.Module):
    """Generated by tools/tfjs_to_torchscript.py from {source}."""

    def __init__(self, params: dict):
        super().__init__()
        for key, value in params.items():
            self.register_parameter(key, torch.nn.Parameter(value, requires_grad=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
{body}
'''


class _CodeGen:
    def __init__(self, weights):
        self.weights = weights
        self.vars = {}
        self.params = {}
        self.used = {"self", "x", "torch", "F"}
        self.lines = []
        self.count = 0

    def param(self, name, array):
        attr = onnx_to_torchscript._sanitize(name, self.used)
        self.params[attr] = array
        return f"self.{attr}"

    def value(self, name):
        """Expression for a tensor used element-wise (constants laid out for NCHW)."""
        if name in self.vars:
            return self.vars[name]
        array = self.const(name)
        if array.ndim == 0 or array.size == 1:
            return repr(float(array.reshape(())))
        if array.ndim == 1:
            array = array.reshape(-1, 1, 1)
        elif array.ndim == 4:
            array = array.transpose(0, 3, 1, 2)
        else:
            raise ConversionError(f"constant {name} of rank {array.ndim} in an element-wise op")
        self.vars[name] = self.param(name, np.ascontiguousarray(array))
        return self.vars[name]

    def const(self, name):
        if name not in self.weights:
            raise ConversionError(f"{name} is not a constant")
        return self.weights[name]

    def define(self, name, expression, comment):
        var = f"t{self.count}"
        self.count += 1
        self.lines.append(f"        {var} = {expression}  # {comment}")
        self.vars[name] = var

    def emit(self, node):
        op = node["op"]
        name = node["name"]
        inputs = [_input_name(i) for i in node.get("input", []) if not i.startswith("^")]
        label = f"{op} {name}"
        if op == "Const":
            return
        if op == "Placeholder":
            raise ConversionError("more than one graph input")
        fmt = _attr(node, "data_format", "NHWC")
        if fmt != "NHWC":
            raise ConversionError(f"{label}: data format {fmt} is not supported")
        if op == "Identity":
            self.vars[name] = self.value(inputs[0])
            return
        if op in ("Conv2D", "DepthwiseConv2dNative"):
            kernel = self.const(inputs[1])
            kh, kw, cin, cout = kernel.shape
            if op == "Conv2D":
                weight = kernel.transpose(3, 2, 0, 1)
                groups = 1
            else:
                weight = kernel.transpose(2, 3, 0, 1).reshape(cin * cout, 1, kh, kw)
                groups = cin
            w = self.param(inputs[1], np.ascontiguousarray(weight))
            _, sh, sw, _ = _attr(node, "strides", [1, 1, 1, 1])
            dilations = _attr(node, "dilations", [1, 1, 1, 1])
            dh, dw = dilations[1], dilations[2]
            padding = _attr(node, "padding")
            source = self.value(inputs[0])
            pad = [0, 0]
            if padding == "SAME":
                if sh == 1 and sw == 1 and (kh - 1) * dh % 2 == 0 and (kw - 1) * dw % 2 == 0:
                    pad = [(kh - 1) * dh // 2, (kw - 1) * dw // 2]
                else:
                    source = f"same_pad({source}, {kh}, {kw}, {sh}, {sw}, {dh}, {dw})"
            elif padding != "VALID":
                raise ConversionError(f"{label}: padding {padding} is not supported")
            expression = f"F.conv2d({source}, {w}, None, [{sh}, {sw}], {pad}, [{dh}, {dw}], {groups})"
        elif op == "Conv2DBackpropInput":
            sizes = [int(v) for v in self.const(inputs[0])]
            kernel = self.const(inputs[1])  # [kh, kw, out, in]
            kh, kw, _, _ = kernel.shape
            w = self.param(inputs[1], np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
            _, sh, sw, _ = _attr(node, "strides", [1, 1, 1, 1])
            if _attr(node, "dilations", [1, 1, 1, 1]) != [1, 1, 1, 1]:
                raise ConversionError(f"{label}: dilated transposed convolution is not supported")
            padding = _attr(node, "padding")
            oh, ow = sizes[1], sizes[2]
            source = self.value(inputs[2])
            full = f"F.conv_transpose2d({source}, {w}, None, [{sh}, {sw}])"
            if padding == "VALID":
                top = left = 0
            elif padding == "SAME":
                # Output size is fixed by input_sizes; TF crops the padding with the odd pixel after.
                top, left = None, None
            else:
                raise ConversionError(f"{label}: padding {padding} is not supported")
            self.define(name + "/full", full, label + " (uncropped)")
            var = self.vars[name + "/full"]
            if top is None:
                expression = (f"{var}[:, :, ({var}.size(2) - {oh}) // 2:({var}.size(2) - {oh}) // 2 + {oh}, "
                              f"({var}.size(3) - {ow}) // 2:({var}.size(3) - {ow}) // 2 + {ow}]")
            else:
                expression = f"{var}[:, :, :{oh}, :{ow}]"
        elif op in ("Add", "AddV2", "Mul"):
            symbol = "*" if op == "Mul" else "+"
            expression = f"{self.value(inputs[0])} {symbol} {self.value(inputs[1])}"
        elif op == "AddN":
            expression = " + ".join(self.value(i) for i in inputs)
        elif op == "Relu":
            expression = f"torch.relu({self.value(inputs[0])})"
        elif op == "Relu6":
            expression = f"torch.clamp({self.value(inputs[0])}, 0.0, 6.0)"
        elif op == "Sigmoid":
            expression = f"torch.sigmoid({self.value(inputs[0])})"
        elif op == "AvgPool":
            if _attr(node, "padding") != "VALID":
                raise ConversionError(f"{label}: only VALID average pooling is supported")
            _, kh, kw, _ = _attr(node, "ksize")
            _, sh, sw, _ = _attr(node, "strides")
            expression = f"F.avg_pool2d({self.value(inputs[0])}, [{kh}, {kw}], [{sh}, {sw}])"
        elif op == "ResizeBilinear":
            if _attr(node, "align_corners", False) or not _attr(node, "half_pixel_centers", False):
                raise ConversionError(f"{label}: only half-pixel-centre bilinear resize is supported")
            size = [int(v) for v in self.const(inputs[1])]
            expression = (f"F.interpolate({self.value(inputs[0])}, size={size}, mode='bilinear', "
                          f"align_corners=False)")
        else:
            raise ConversionError(f"{label}: unsupported op (supported: {', '.join(SUPPORTED_OPS)})")
        self.define(name, expression, label)


def convert(model_json_path, class_name="ConvertedTfjs", source="TF.js"):
    """Builds a scripted NCHW module from a TF.js graph model. Returns (ScriptModule, info)."""
    with open(model_json_path, encoding="utf-8") as f:
        model = json.load(f)
    if model.get("format") != "graph-model":
        raise ConversionError("only TF.js graph models are supported")
    weights = read_weights(model, os.path.dirname(model_json_path))
    nodes = model["modelTopology"]["node"]
    placeholders = [n for n in nodes if n["op"] == "Placeholder"]
    if len(placeholders) != 1:
        raise ConversionError("expected exactly one input placeholder")
    outputs = list(model.get("signature", {}).get("outputs", {}).keys())
    if len(outputs) != 1:
        raise ConversionError(f"expected one output in the signature, found {outputs}")
    output = _input_name(outputs[0])
    by_name = {n["name"]: n for n in nodes}
    # Keep the nodes the output needs.
    needed, stack = set(), [output]
    while stack:
        current = stack.pop()
        if current in needed:
            continue
        needed.add(current)
        stack.extend(_input_name(i) for i in by_name[current].get("input", []) if not i.startswith("^"))
    gen = _CodeGen(weights)
    gen.vars[placeholders[0]["name"]] = "x"
    op_counts = {}
    for node in _sorted_nodes([n for n in nodes if n["name"] in needed]):
        if node["op"] == "Placeholder":
            continue
        if node["op"] == "Const" and node["name"] not in weights:
            raise ConversionError(f"constant {node['name']} has no weights")
        op_counts[node["op"]] = op_counts.get(node["op"], 0) + 1
        gen.emit(node)
    gen.lines.append(f"        return {gen.vars[output]}")
    text = _TEMPLATE.format(class_name=class_name, source=source, body="\n".join(gen.lines))
    return model_export.script_generated(text, class_name, gen.params, op_counts)

"""Converts a TensorFlow.js graph model (model.json + weight files) into a TorchScript module.

Like onnx_to_torchscript.py, it generates the source of a torch.nn.Module from the graph and
scripts it (Note [Generated TorchScript source] in model_export.py). Supported ops are those of
small mobile segmentation and detection networks such as MediaPipe selfie segmentation and
NanoDet: Conv2D, DepthwiseConv2dNative, Conv2DBackpropInput, Add/AddV2/AddN, Mul, Relu, Relu6,
LeakyRelu, Sigmoid, AvgPool, MaxPool, ResizeBilinear, Pad/PadV2, Transpose, ConcatV2, SplitV,
Reshape, Identity. Nodes whose inputs are all constants (NanoDet's SparseToDense shape
arithmetic) are folded at conversion time.

Note [Tracked layouts]
TF graphs are NHWC with HWIO kernels; LibTorch's convolutions are NCHW. Each generated variable
holds its TF tensor permuted by a layout the converter tracks: convolutions, pooling and resizes
produce NCHW variables of NHWC tensors (layout (0, 3, 1, 2)), element-wise ops keep their input's
layout (constants are broadcast as TF does, then laid out the same way), and a Transpose only
changes the tracked layout, so the transposes a graph converted from ONNX has around every
convolution cost nothing. An op that needs a particular layout (a convolution wants NCHW, a
Reshape TF's own order) gets a permute only when the variable is not already in it. The kernels
are permuted once at conversion time. An NHWC image input ([1, H, W, 3], MediaPipe) is fed as
[1, 3, H, W] and its rank-4 outputs come back NCHW; an NCHW input (NanoDet) is fed as it is.

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


_TEMPLATE = '''from typing import Tuple

import torch
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

    def forward(self, x: torch.Tensor) -> {returns}:
{body}
'''


def _ref(name):
    """A node input as (node name, output index): "a" and "a:0" are output 0 of node a."""
    match = re.fullmatch(r"(.*):(\d+)", name)
    if match:
        return match.group(1), int(match.group(2))
    return name, 0


def _inverse(perm):
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return tuple(inverse)


_NCHW = (0, 3, 1, 2)  # the torch layout of a TF NHWC tensor (Note [Tracked layouts])


def _fold_constant(node, args):
    """Evaluates a node whose inputs are all constants, or returns None when it cannot."""
    op = node["op"]
    if op == "SparseToDense":
        indices, shape, values, default = args
        out = np.full([int(v) for v in np.atleast_1d(shape)], default.reshape(()), values.dtype)
        indices = indices.reshape(-1, max(1, out.ndim)) if indices.size else indices
        values = np.broadcast_to(values, (indices.shape[0],)) if indices.size else values
        for index, value in zip(indices, values):
            out[tuple(int(i) for i in index)] = value
        return out
    if op in ("Add", "AddV2"):
        return args[0] + args[1]
    if op == "Mul":
        return args[0] * args[1]
    if op == "Identity":
        return args[0]
    return None


class _CodeGen:
    """Emits forward()'s lines. Each tensor value is a generated variable holding the TF tensor
    permuted by a tracked layout (Note [Tracked layouts])."""

    def __init__(self, weights):
        self.weights = weights
        self.vars = {}  # (node name, output index) -> (variable, perm)
        self.params = {}
        self.used = {"self", "x", "torch", "F"}
        self.lines = []
        self.count = 0

    def param(self, name, array):
        attr = onnx_to_torchscript._sanitize(name, self.used)
        self.params[attr] = array
        return f"self.{attr}"

    def const(self, name):
        name = _ref(name)[0]
        if name not in self.weights:
            raise ConversionError(f"{name} is not a constant")
        return self.weights[name]

    def is_const(self, name):
        return _ref(name) not in self.vars and _ref(name)[0] in self.weights

    def tensor(self, name, perm=None):
        """Variable for a computed tensor; with `perm`, permuted to that layout first."""
        key = _ref(name)
        if key not in self.vars:
            raise ConversionError(f"{name} is used as a tensor but is not computed")
        var, have = self.vars[key]
        if perm is None or tuple(perm) == have:
            return var, have
        if len(perm) != len(have):
            raise ConversionError(f"{name}: rank {len(have)} used as rank {len(perm)}")
        # torch = tf.permute(have); wanted tf.permute(perm) = torch.permute(have^-1[perm]).
        cached = (key, tuple(perm))
        if cached not in self.vars:
            inverse = _inverse(have)
            order = [inverse[p] for p in perm]
            self.vars[cached] = (self.define_var(f"{var}.permute({order}).contiguous()", tuple(perm),
                                                 f"layout of {name}"), tuple(perm))
        return self.vars[cached]

    def operand(self, name, perm):
        """An element-wise operand in layout `perm`: a tensor permuted to it, or a constant
        broadcast as TF does (trailing axes aligned) and laid out the same way."""
        if not self.is_const(name):
            return self.tensor(name, perm)[0]
        array = self.const(name)
        if array.size == 1:
            return repr(float(array.reshape(())))
        if array.ndim > len(perm):
            raise ConversionError(f"constant {name} of rank {array.ndim} against rank {len(perm)}")
        array = array.reshape((1,) * (len(perm) - array.ndim) + array.shape).transpose(perm)
        key = (name, perm)
        if key not in self.vars:
            self.vars[key] = (self.param(name, np.ascontiguousarray(array)), perm)
        return self.vars[key][0]

    def define_var(self, expression, perm, comment):
        var = f"t{self.count}"
        self.count += 1
        self.lines.append(f"        {var} = {expression}  # {comment}")
        self.last = var
        return var

    def define(self, name, expression, perm, comment, index=0):
        self.vars[(name, index)] = (self.define_var(expression, perm, comment), tuple(perm))

    def alias(self, name, source, perm=None):
        var, have = self.tensor(source)
        self.vars[(name, 0)] = (var, have if perm is None else tuple(perm))

    def axis(self, name, axis, perm):
        """The torch axis of TF axis `axis` of a tensor in layout `perm`."""
        axis = int(np.asarray(self.const(name)).reshape(-1)[0]) if isinstance(axis, str) else axis
        axis %= len(perm)
        return perm.index(axis)

    def emit(self, node):
        op = node["op"]
        name = node["name"]
        inputs = [i for i in node.get("input", []) if not i.startswith("^")]
        label = f"{op} {name}"
        if op == "Const":
            return
        if op == "Placeholder":
            raise ConversionError("more than one graph input")
        if inputs and all(self.is_const(i) for i in inputs):
            folded = _fold_constant(node, [self.const(i) for i in inputs])
            if folded is None:
                raise ConversionError(f"{label}: cannot fold an op of constants")
            self.weights[name] = np.asarray(folded)
            return
        fmt = _attr(node, "data_format", "NHWC")
        if fmt != "NHWC":
            raise ConversionError(f"{label}: data format {fmt} is not supported")
        if op == "Identity":
            self.alias(name, inputs[0])
            return
        if op == "Transpose":
            # Free: only the tracked layout changes (Note [Tracked layouts]).
            _, have = self.tensor(inputs[0])
            inverse = _inverse([int(v) for v in self.const(inputs[1])])
            self.alias(name, inputs[0], tuple(inverse[p] for p in have))
            return
        if op in ("Conv2D", "DepthwiseConv2dNative"):
            source, _ = self.tensor(inputs[0], _NCHW)
            kernel = self.const(inputs[1])
            kh, kw, cin, cout = kernel.shape
            if op == "Conv2D":
                weight = kernel.transpose(3, 2, 0, 1)
                # A kernel with fewer input channels than the tensor is a grouped convolution.
                groups = f"{source}.size(1) // {cin}"
            else:
                weight = kernel.transpose(2, 3, 0, 1).reshape(cin * cout, 1, kh, kw)
                groups = str(cin)
            w = self.param(inputs[1], np.ascontiguousarray(weight))
            _, sh, sw, _ = _attr(node, "strides", [1, 1, 1, 1])
            dilations = _attr(node, "dilations", [1, 1, 1, 1])
            dh, dw = dilations[1], dilations[2]
            padding = _attr(node, "padding")
            pad = [0, 0]
            if padding == "SAME":
                if sh == 1 and sw == 1 and (kh - 1) * dh % 2 == 0 and (kw - 1) * dw % 2 == 0:
                    pad = [(kh - 1) * dh // 2, (kw - 1) * dw // 2]
                else:
                    source = f"same_pad({source}, {kh}, {kw}, {sh}, {sw}, {dh}, {dw})"
            elif padding != "VALID":
                raise ConversionError(f"{label}: padding {padding} is not supported")
            self.define(name, f"F.conv2d({source}, {w}, None, [{sh}, {sw}], {pad}, [{dh}, {dw}], {groups})",
                        _NCHW, label)
            return
        if op == "Conv2DBackpropInput":
            sizes = [int(v) for v in self.const(inputs[0])]
            kernel = self.const(inputs[1])  # [kh, kw, out, in]
            w = self.param(inputs[1], np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
            _, sh, sw, _ = _attr(node, "strides", [1, 1, 1, 1])
            if _attr(node, "dilations", [1, 1, 1, 1]) != [1, 1, 1, 1]:
                raise ConversionError(f"{label}: dilated transposed convolution is not supported")
            padding = _attr(node, "padding")
            if padding not in ("VALID", "SAME"):
                raise ConversionError(f"{label}: padding {padding} is not supported")
            oh, ow = sizes[1], sizes[2]
            source, _ = self.tensor(inputs[2], _NCHW)
            var = self.define_var(f"F.conv_transpose2d({source}, {w}, None, [{sh}, {sw}])", _NCHW,
                                  label + " (uncropped)")
            if padding == "SAME":
                # Output size is fixed by input_sizes; TF crops the padding with the odd pixel after.
                expression = (f"{var}[:, :, ({var}.size(2) - {oh}) // 2:({var}.size(2) - {oh}) // 2 + {oh}, "
                              f"({var}.size(3) - {ow}) // 2:({var}.size(3) - {ow}) // 2 + {ow}]")
            else:
                expression = f"{var}[:, :, :{oh}, :{ow}]"
            self.define(name, expression, _NCHW, label)
            return
        if op in ("Add", "AddV2", "Mul", "AddN"):
            perm = next(self.tensor(i)[1] for i in inputs if not self.is_const(i))
            if op == "AddN":
                expression = " + ".join(self.operand(i, perm) for i in inputs)
            else:
                symbol = "*" if op == "Mul" else "+"
                expression = f"{self.operand(inputs[0], perm)} {symbol} {self.operand(inputs[1], perm)}"
            self.define(name, expression, perm, label)
            return
        if op in ("Relu", "Relu6", "Sigmoid", "LeakyRelu"):
            source, perm = self.tensor(inputs[0])
            expression = {
                "Relu": f"torch.relu({source})",
                "Relu6": f"torch.clamp({source}, 0.0, 6.0)",
                "Sigmoid": f"torch.sigmoid({source})",
                "LeakyRelu": f"F.leaky_relu({source}, {_attr(node, 'alpha', 0.2)!r})",
            }[op]
            self.define(name, expression, perm, label)
            return
        if op in ("AvgPool", "MaxPool"):
            source, _ = self.tensor(inputs[0], _NCHW)
            if _attr(node, "padding") != "VALID":
                raise ConversionError(f"{label}: only VALID pooling is supported")
            _, kh, kw, _ = _attr(node, "ksize")
            _, sh, sw, _ = _attr(node, "strides")
            function = "F.avg_pool2d" if op == "AvgPool" else "F.max_pool2d"
            self.define(name, f"{function}({source}, [{kh}, {kw}], [{sh}, {sw}])", _NCHW, label)
            return
        if op == "ResizeBilinear":
            if _attr(node, "align_corners", False) or not _attr(node, "half_pixel_centers", False):
                raise ConversionError(f"{label}: only half-pixel-centre bilinear resize is supported")
            source, _ = self.tensor(inputs[0], _NCHW)
            size = [int(v) for v in self.const(inputs[1])]
            self.define(name, f"F.interpolate({source}, size={size}, mode='bilinear', align_corners=False)",
                        _NCHW, label)
            return
        if op in ("Pad", "PadV2"):
            source, perm = self.tensor(inputs[0])
            paddings = np.asarray(self.const(inputs[1])).reshape(len(perm), 2)
            value = float(np.asarray(self.const(inputs[2])).reshape(())) if op == "PadV2" else 0.0
            value = f"float('{value}')" if not np.isfinite(value) else repr(value)
            # F.pad lists (before, after) from the last torch axis backwards.
            pairs = [int(v) for j in reversed(range(len(perm))) for v in paddings[perm[j]]]
            while pairs and pairs[-1] == 0 and pairs[-2] == 0:
                pairs = pairs[:-2]
            self.define(name, f"F.pad({source}, {pairs}, 'constant', {value})", perm, label)
            return
        if op == "ConcatV2":
            perm = next(self.tensor(i)[1] for i in inputs[:-1])
            parts = ", ".join(self.tensor(i, perm)[0] for i in inputs[:-1])
            self.define(name, f"torch.cat([{parts}], {self.axis(inputs[-1], inputs[-1], perm)})", perm, label)
            return
        if op == "SplitV":
            source, perm = self.tensor(inputs[0])
            sizes = [int(v) for v in self.const(inputs[1])]
            if any(v < 0 for v in sizes):
                raise ConversionError(f"{label}: inferred split sizes are not supported")
            dim = self.axis(inputs[2], inputs[2], perm)
            var = self.define_var(f"torch.split({source}, {sizes}, {dim})", perm, label)
            for k in range(len(sizes)):
                self.vars[(name, k)] = (f"{var}[{k}]", perm)
            return
        if op == "Reshape":
            identity = tuple(range(len(self.tensor(inputs[0])[1])))
            source, _ = self.tensor(inputs[0], identity)
            shape = [int(v) for v in self.const(inputs[1])]
            self.define(name, f"{source}.reshape({shape})", tuple(range(len(shape))), label)
            return
        raise ConversionError(f"{label}: unsupported op (supported: {', '.join(SUPPORTED_OPS)})")


def convert(model_json_path, class_name="ConvertedTfjs", source="TF.js", outputs=None):
    """Builds a scripted module from a TF.js graph model. Returns (ScriptModule, info).

    `outputs` names the signature outputs to return, in order (a tuple); None = the single output
    of the signature, returned as a tensor. Note [Tracked layouts] says how NHWC inputs and outputs
    become NCHW."""
    with open(model_json_path, encoding="utf-8") as f:
        model = json.load(f)
    if model.get("format") != "graph-model":
        raise ConversionError("only TF.js graph models are supported")
    weights = read_weights(model, os.path.dirname(model_json_path))
    nodes = model["modelTopology"]["node"]
    placeholders = [n for n in nodes if n["op"] == "Placeholder"]
    if len(placeholders) != 1:
        raise ConversionError("expected exactly one input placeholder")
    signature = model.get("signature", {}).get("outputs", {})
    if outputs is None:
        if len(signature) != 1:
            raise ConversionError(f"expected one output in the signature, found {list(signature)}")
        names, single = [_input_name(next(iter(signature)))], True
    else:
        missing = [o for o in outputs if o not in signature and o + ":0" not in signature]
        if missing:
            raise ConversionError(f"outputs {missing} are not in the signature {list(signature)}")
        names, single = [_input_name(o) for o in outputs], False
    by_name = {n["name"]: n for n in nodes}
    # Keep the nodes the outputs need.
    needed, stack = set(), list(names)
    while stack:
        current = stack.pop()
        if current in needed:
            continue
        needed.add(current)
        stack.extend(_input_name(i) for i in by_name[current].get("input", []) if not i.startswith("^"))
    gen = _CodeGen(weights)
    dims = [int(d.get("size", -1)) for d in placeholders[0].get("attr", {}).get("shape", {})
            .get("shape", {}).get("dim", [])]
    # An NHWC image input ([1, H, W, 3]) is fed as NCHW; other inputs as they are.
    nhwc_input = len(dims) == 4 and dims[3] in (1, 3) and dims[1] not in (1, 3)
    input_perm = _NCHW if nhwc_input else tuple(range(len(dims) or 4))
    gen.vars[(placeholders[0]["name"], 0)] = ("x", input_perm)
    op_counts = {}
    for node in _sorted_nodes([n for n in nodes if n["name"] in needed]):
        if node["op"] == "Placeholder":
            continue
        if node["op"] == "Const" and node["name"] not in weights:
            raise ConversionError(f"constant {node['name']} has no weights")
        op_counts[node["op"]] = op_counts.get(node["op"], 0) + 1
        gen.emit(node)
    results = []
    for name in names:
        var, perm = gen.tensor(name)
        # Rank-4 outputs of an NHWC graph come out NCHW, like its input; the rest in TF's layout.
        want = _NCHW if nhwc_input and len(perm) == 4 else tuple(range(len(perm)))
        results.append(gen.tensor(name, want)[0])
    if single:
        gen.lines.append(f"        return {results[0]}")
        returns = "torch.Tensor"
    else:
        gen.lines.append(f"        return ({', '.join(results)}{',' if len(results) == 1 else ''})")
        returns = f"Tuple[{', '.join(['torch.Tensor'] * len(results))}]"
    text = _TEMPLATE.format(class_name=class_name, source=source, body="\n".join(gen.lines),
                            returns=returns)
    return model_export.script_generated(text, class_name, gen.params, op_counts)

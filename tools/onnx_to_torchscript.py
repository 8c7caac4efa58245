"""Converts an ONNX convolutional graph (IS-Net and models like it) into a TorchScript module.

There is no ONNX-to-PyTorch converter in Debian, so this walks the graph itself: it sorts the
nodes topologically, keeps only what the requested outputs need, and generates the source of a
torch.nn.Module whose forward() runs the nodes with torch ops; torch.jit.script compiles it
(see Note [Generated TorchScript source] in model_export.py). Supported ops are the ones such
networks use: Conv, Relu, Sigmoid, Add, Mul, Concat, MaxPool, AveragePool, Resize, Cast, Identity.
Anything else is reported by name rather than guessed at.

Note [Dtype-neutral graphs]
Float16 ONNX exports wrap the graph in Cast nodes (input to fp16, output back to fp32, and fp32
islands around Resize). The converted module instead computes in whatever dtype its weights
have: float-to-float Casts become no-ops, initializers keep their stored dtype (fp16 here, which
halves the file losslessly) and the loader casts the module to float32 on CPU or float16 on CUDA.

Note [Resize follows its neighbour]
PyTorch exports of `F.interpolate(x, size=y.shape[2:])` bake y's size for the export resolution
into constants (`Concat(Slice(Shape(x)), [32, 32])`). To run at other input sizes, each Resize is
re-targeted at the tensor it is concatenated with (the skip connection of the U-Net), or at the
network input when its constant size equals the input size. At the export size the new target is
checked against the baked constant with ONNX shape inference, so the conversion stays exact there.
"""

import heapq
import re

import onnx
import torch
from onnx import numpy_helper, shape_inference

import model_export

SUPPORTED_OPS = ("Conv", "Relu", "Sigmoid", "Add", "Mul", "Concat", "MaxPool", "AveragePool",
                 "Resize", "Cast", "Identity")
_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)


class ConversionError(RuntimeError):
    pass


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def topological_order(nodes, available):
    """Kahn's algorithm, stable in the file's order. `available` are names known up front
    (graph inputs, initializers). Raises ConversionError on cycles or dangling inputs."""
    producers = {}
    for index, node in enumerate(nodes):
        for out in node.output:
            producers[out] = index
    pending = []
    for node in nodes:
        deps = {producers[i] for i in node.input if i and i not in available and i in producers}
        missing = [i for i in node.input if i and i not in available and i not in producers]
        if missing:
            raise ConversionError(f"node {node.name or node.op_type} reads undefined {missing}")
        pending.append(deps)
    users = [[] for _ in nodes]
    for index, deps in enumerate(pending):
        for dep in deps:
            users[dep].append(index)
    ready = [i for i, deps in enumerate(pending) if not deps]
    order = []
    remaining = [len(d) for d in pending]
    heapq.heapify(ready)
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for user in users[index]:
            remaining[user] -= 1
            if remaining[user] == 0:
                heapq.heappush(ready, user)
    if len(order) != len(nodes):
        raise ConversionError("the ONNX graph has a cycle")
    return [nodes[i] for i in order]


class _Graph:
    """Indexes of an ONNX graph the code generator needs."""

    def __init__(self, model):
        graph = model.graph
        self.model = model
        self.initializers = {t.name: t for t in graph.initializer}
        self.inputs = [i.name for i in graph.input if i.name not in self.initializers]
        available = set(self.inputs) | set(self.initializers)
        self.nodes = topological_order(list(graph.node), available)
        self.producer = {out: node for node in self.nodes for out in node.output}
        self.consumers = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        inferred = shape_inference.infer_shapes(model)
        self.shapes = {}
        for value in list(inferred.graph.value_info) + list(graph.input) + list(graph.output):
            dims = value.type.tensor_type.shape.dim
            if dims and all(d.HasField("dim_value") for d in dims):
                self.shapes[value.name] = [d.dim_value for d in dims]

    def constant_value(self, name):
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            return numpy_helper.to_array(_attrs(node)["value"])
        return None

    def skip_casts_forward(self, name):
        """Follows float-to-float Casts (no-ops here) from name to the tensors that use it."""
        result = []
        for user in self.consumers.get(name, []):
            if user.op_type in ("Cast", "Identity"):
                result.extend(self.skip_casts_forward(user.output[0]))
            else:
                result.append((user, name))
        return result

    def skip_casts_back(self, name):
        node = self.producer.get(name)
        while node is not None and node.op_type in ("Cast", "Identity"):
            name = node.input[0]
            node = self.producer.get(name)
        return name

    def resize_size_constant(self, node):
        """The baked (h, w) of a Resize given by `sizes`, via Concat(Slice(Shape), const)."""
        if len(node.input) < 4 or not node.input[3]:
            return None
        sizes = self.producer.get(node.input[3])
        if sizes is None:
            return None
        if sizes.op_type == "Constant":
            value = self.constant_value(sizes.output[0])
            return [int(v) for v in value[-2:]]
        if sizes.op_type == "Concat":
            value = self.constant_value(sizes.input[-1])
            if value is not None and len(value) == 2:
                return [int(v) for v in value]
        return None


def _resize_target(graph, node):
    """The tensor whose spatial size a Resize output takes; Note [Resize follows its neighbour]."""
    baked = graph.resize_size_constant(node)
    if baked is None:
        raise ConversionError(f"Resize {node.name}: only `sizes` given as constants is supported")
    candidates = []
    for user, via in graph.skip_casts_forward(node.output[0]):
        if user.op_type == "Concat":
            candidates.extend(graph.skip_casts_back(i) for i in user.input if i != via)
    candidates.extend(graph.inputs)
    for name in candidates:
        shape = graph.shapes.get(name)
        if shape is not None and len(shape) == 4 and shape[2:] == baked:
            return name
    raise ConversionError(f"Resize {node.name}: no neighbour tensor of size {baked}")


def _needed_nodes(graph, outputs):
    """Nodes the outputs depend on; Resize size inputs are not followed (they are re-targeted)."""
    needed = set()
    stack = list(outputs)
    targets = {}
    while stack:
        name = stack.pop()
        node = graph.producer.get(name)
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        inputs = list(node.input)
        if node.op_type == "Resize":
            target = _resize_target(graph, node)
            targets[id(node)] = target
            inputs = [inputs[0], target]
        stack.extend(i for i in inputs if i)
    return [n for n in graph.nodes if id(n) in needed], targets


def _sanitize(name, used):
    base = re.sub(r"[^0-9a-zA-Z_]", "_", name).strip("_") or "t"
    if base[0].isdigit():
        base = "t_" + base
    candidate = base
    suffix = 1
    while candidate in used:
        suffix += 1
        candidate = f"{base}_{suffix}"
    used.add(candidate)
    return candidate


class _CodeGen:
    def __init__(self, graph, targets):
        self.graph = graph
        self.targets = targets
        self.used = {"self", "torch", "F", "x"}
        self.vars = {}
        self.params = {}  # attribute name -> numpy array
        self.lines = []

    def ref(self, name):
        """Python expression for an ONNX tensor name."""
        if name in self.vars:
            return self.vars[name]
        if name in self.graph.initializers:
            attr = _sanitize(name, self.used)
            self.params[attr] = numpy_helper.to_array(self.graph.initializers[name])
            self.vars[name] = f"self.{attr}"
            return self.vars[name]
        value = self.graph.constant_value(name)
        if value is not None and value.dtype.kind == "f":
            attr = _sanitize(name, self.used)
            self.params[attr] = value
            self.vars[name] = f"self.{attr}"
            return self.vars[name]
        raise ConversionError(f"tensor {name} has no value at this point")

    def define(self, name, expression, comment):
        var = f"v{len(self.vars)}"
        self.used.add(var)
        self.lines.append(f"        {var} = {expression}  # {comment}")
        self.vars[name] = var

    def emit(self, node):
        op = node.op_type
        attrs = _attrs(node)
        inputs = node.input[:1] if op == "Resize" else node.input  # sizes: re-targeted
        args = [self.ref(i) if i else None for i in inputs]
        label = f"{op} {node.name}"
        if op in ("Cast", "Identity"):
            if op == "Cast" and attrs["to"] not in _FLOAT_TYPES:
                raise ConversionError(f"{label}: only float-to-float casts are supported")
            self.vars[node.output[0]] = args[0]  # Note [Dtype-neutral graphs]
            return
        if op == "Conv":
            kernel = attrs.get("kernel_shape")
            if kernel is not None and len(kernel) != 2:
                raise ConversionError(f"{label}: only 2-D convolutions are supported")
            if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise ConversionError(f"{label}: auto_pad is not supported")
            top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
            source = args[0]
            if (top, left) != (bottom, right):
                source = f"F.pad({source}, [{left}, {right}, {top}, {bottom}])"
                top = left = 0
            bias = args[2] if len(args) > 2 and args[2] else "None"
            expression = (f"F.conv2d({source}, {args[1]}, {bias}, {list(attrs.get('strides', [1, 1]))}, "
                          f"[{top}, {left}], {list(attrs.get('dilations', [1, 1]))}, "
                          f"{attrs.get('group', 1)})")
        elif op == "Relu":
            expression = f"torch.relu({args[0]})"
        elif op == "Sigmoid":
            expression = f"torch.sigmoid({args[0]})"
        elif op == "Add":
            expression = f"{args[0]} + {args[1]}"
        elif op == "Mul":
            expression = f"{args[0]} * {args[1]}"
        elif op == "Concat":
            expression = f"torch.cat([{', '.join(args)}], {attrs['axis']})"
        elif op in ("MaxPool", "AveragePool"):
            if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise ConversionError(f"{label}: auto_pad is not supported")
            top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
            if (top, left) != (bottom, right) or attrs.get("dilations", [1, 1]) != [1, 1]:
                raise ConversionError(f"{label}: asymmetric padding or dilation is not supported")
            kernel = list(attrs["kernel_shape"])
            strides = list(attrs.get("strides", [1, 1]))
            ceil = bool(attrs.get("ceil_mode", 0))
            if op == "MaxPool":
                expression = (f"F.max_pool2d({args[0]}, {kernel}, {strides}, [{top}, {left}], "
                              f"ceil_mode={ceil})")
            else:
                include = bool(attrs.get("count_include_pad", 0))
                expression = (f"F.avg_pool2d({args[0]}, {kernel}, {strides}, [{top}, {left}], "
                              f"ceil_mode={ceil}, count_include_pad={include})")
        elif op == "Resize":
            mode = attrs.get("mode", b"nearest")
            transform = attrs.get("coordinate_transformation_mode", b"half_pixel")
            if mode != b"linear" or transform not in (b"half_pixel", b"pytorch_half_pixel"):
                raise ConversionError(f"{label}: only bilinear half-pixel Resize is supported")
            target = self.ref(self.targets[id(node)])
            expression = (f"F.interpolate({args[0]}, size=[{target}.size(2), {target}.size(3)], "
                          f"mode='bilinear', align_corners=False)")
        else:
            raise ConversionError(f"{label}: unsupported op (supported: {', '.join(SUPPORTED_OPS)})")
        self.define(node.output[0], expression, label)


_TEMPLATE = '''import torch
import torch.nn.functional as F


class {class_name}(torch.nn.Module):
    """Generated by tools/onnx_to_torchscript.py from {source}."""

    def __init__(self, params: dict):
        super().__init__()
        for key, value in params.items():
            self.register_parameter(key, torch.nn.Parameter(value, requires_grad=False))

    def forward(self, x: torch.Tensor) -> {return_type}:
{body}
'''


def convert(model, outputs, class_name="ConvertedOnnx", source="ONNX"):
    """Builds a scripted module from an onnx.ModelProto.

    outputs: ONNX output names to return (one name -> a tensor, several -> a tuple).
    Returns (torch.jit.ScriptModule, info dict with op counts and parameter count)."""
    graph = _Graph(model)
    if len(graph.inputs) != 1:
        raise ConversionError(f"expected one graph input, found {graph.inputs}")
    nodes, targets = _needed_nodes(graph, outputs)
    gen = _CodeGen(graph, targets)
    gen.vars[graph.inputs[0]] = "x"
    op_counts = {}
    for node in nodes:
        op_counts[node.op_type] = op_counts.get(node.op_type, 0) + 1
        gen.emit(node)
    if len(outputs) == 1:
        return_type = "torch.Tensor"
        gen.lines.append(f"        return {gen.ref(outputs[0])}")
    else:
        return_type = "Tuple[" + ", ".join(["torch.Tensor"] * len(outputs)) + "]"
        gen.lines.append(f"        return ({', '.join(gen.ref(o) for o in outputs)})")
    text = _TEMPLATE.format(class_name=class_name, source=source, return_type=return_type,
                            body="\n".join(gen.lines))
    if len(outputs) > 1:
        text = "from typing import Tuple\n" + text
    return model_export.script_generated(text, class_name, gen.params, op_counts)

"""The host's GEMM limits at a ViT's own shapes: what a format's throughput is measured against.

A format's share of the limit for its arithmetic is (img/s x FLOP per image) / (the best GEMM rate this host reaches
at the model's linear-layer shapes). The fp32 limit is the better of onnxruntime's MatMul and torch's matmul (on AMD
CPUs torch's MKL path can be far below onnxruntime's MLAS, so torch.mm alone understates it). The int8 limit is the
same MatMul graph quantised by the export's own `quantize_onnx_int8` (DynamicQuantizeLinear + MatMulInteger, which
onnxruntime fuses into DynamicQuantizeMatMul), once per int8 weight setting: the same kernels the int8 export runs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from har_core.config import TinyBackboneConfig

MLP_RATIO = 4  # CLIP's ViTs: intermediate size = 4 x width


def tokens_per_image(config: TinyBackboneConfig) -> int:
    return (config.image_size // config.patch_size) ** 2 + 1  # patches + the class token


def linear_shapes(config: TinyBackboneConfig) -> list[tuple[int, int]]:
    """(in, out) of one encoder layer's linear layers: packed q/k/v, attention output, MLP up, MLP down."""
    width = config.hidden_size
    return [(width, 3 * width), (width, width), (width, MLP_RATIO * width), (MLP_RATIO * width, width)]


def gflop_per_image(config: TinyBackboneConfig) -> float:
    """Multiply-adds x 2 of the image tower: patch embedding, every layer's linear layers and attention, projection."""
    tokens, width = tokens_per_image(config), config.hidden_size
    patch = (tokens - 1) * 3 * config.patch_size**2 * width
    linear = tokens * sum(k * n for k, n in linear_shapes(config))
    attention = 2 * tokens * tokens * width  # scores and weighted values
    projection = width * config.projection_dim
    return 2 * (patch + config.num_layers * (linear + attention) + projection) / 1e9


def gemm_flop(config: TinyBackboneConfig, batch: int) -> float:
    """FLOP of one call of the peak graph: one layer's linear layers over `batch` images' tokens."""
    return 2 * batch * tokens_per_image(config) * sum(k * n for k, n in linear_shapes(config))


def write_fp32_gemm_model(config: TinyBackboneConfig, batch: int, path: Path) -> Path:
    """One layer's linear layers as ONNX MatMuls on (tokens, width) and (tokens, 4 x width) inputs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rows = batch * tokens_per_image(config)
    rng = np.random.default_rng(0)
    nodes, weights, outputs = [], [], []
    for index, (k, n) in enumerate(linear_shapes(config)):
        source = "x" if k == config.hidden_size else "h"
        weight = (rng.standard_normal((k, n), dtype=np.float32) / np.sqrt(k)).astype(np.float32)
        weights.append(numpy_helper.from_array(weight, f"w{index}"))
        nodes.append(helper.make_node("MatMul", [source, f"w{index}"], [f"y{index}"]))
        outputs.append(helper.make_tensor_value_info(f"y{index}", TensorProto.FLOAT, [rows, n]))
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, config.hidden_size]),
        helper.make_tensor_value_info("h", TensorProto.FLOAT, [rows, MLP_RATIO * config.hidden_size]),
    ]
    graph = helper.make_graph(nodes, "gemm_peak", inputs, outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


class GemmPeaks:
    """Callables that each run the peak graph once, and the FLOP each call does; built once, timed in rounds."""

    def __init__(self, config: TinyBackboneConfig, batch: int, threads: int, int8_settings: dict[str, tuple]):
        import onnxruntime as ort
        import torch

        from har_core.export.graphs import quantize_onnx_int8

        self.flop = gemm_flop(config, batch)
        rng = np.random.default_rng(1)
        rows = batch * tokens_per_image(config)
        self._feeds = {
            "x": rng.standard_normal((rows, config.hidden_size), dtype=np.float32),
            "h": rng.standard_normal((rows, MLP_RATIO * config.hidden_size), dtype=np.float32),
        }
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.calls: dict[str, Callable[[], object]] = {}
        with tempfile.TemporaryDirectory(prefix="har-clip-gemm-") as workdir:
            fp32 = write_fp32_gemm_model(config, batch, Path(workdir) / "fp32.onnx")
            models = {"fp32 onnxruntime": fp32}
            for name, (weight_type, reduce_range) in int8_settings.items():
                target = Path(workdir) / f"int8-{len(models)}.onnx"
                models[f"int8 {name}"] = quantize_onnx_int8(fp32, target, weight_type, reduce_range)
            for name, path in models.items():
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                self.calls[name] = lambda session=session: session.run(None, self._feeds)
        x, h = (torch.from_numpy(value) for value in self._feeds.values())
        torch_weights = [torch.randn(k, n) / k**0.5 for k, n in linear_shapes(config)]

        def torch_layer() -> None:
            with torch.inference_mode():
                for weight in torch_weights:
                    (x if weight.shape[0] == config.hidden_size else h) @ weight

        self.calls["fp32 torch"] = torch_layer
        for call in self.calls.values():  # warm-up: first calls pack weights and allocate
            call()

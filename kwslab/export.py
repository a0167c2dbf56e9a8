"""``python -m kwslab.export --ckpt C --out model.onnx``: a trained model as ONNX, checked against PyTorch.

The FeatureConfig, the labels (CTC: the tokens, "" at the blank), the stored detection threshold and the input
layout travel in the ONNX ``metadata_props`` as JSON, so :mod:`kwslab.inference.onnx` needs nothing else (no torch).

* keyword classifiers: ``features (B, F, num_frames) -> logits (B, C)`` (frames fixed when the FeatureConfig sets
  ``num_frames``, dynamic otherwise; batch dynamic);
* CTC recognisers: ``features (B, F, T), lengths (B,) -> log_probs (B, T', V), out_lengths (B,)`` (T dynamic).

What is exported follows the model's kind (:func:`kwslab.inference.model_kind`), never its class name, so any
keyword network chosen by ``class_path`` exports with no registration.
Uses the TorchScript-based exporter (``dynamo=False``): it needs no onnxscript and handles GRUs.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kwslab.checkpoint import CheckpointError, OutputExistsError, atomic_write, check_output
from kwslab.decoding.settings import positive_float, positive_int
from kwslab.inference.backend import CALIBRATION_KEY
from kwslab.inference.loaded import LoadedModel, load_model
from kwslab.inference.onnx import FORMAT, OnnxModel, OnnxModelError
from kwslab.models.base import add_allow_class_argument, allowed_classes

OPSET = 17


@dataclass
class ExportSpec:
    """How to export one kind of model.

    Attributes:
        kind: "keyword" or "ctc" (read by :class:`kwslab.inference.onnx.OnnxModel`).
        graph: an ``nn.Module`` whose forward takes ``example`` and returns the outputs.
        example: example inputs (their shapes fix the non-dynamic axes).
        input_names, output_names: ONNX names. dynamic_axes: as for ``torch.onnx.export``.
        parity_inputs: input tuples on which ONNX Runtime must match PyTorch.
        metadata: extra JSON-able metadata (e.g. ``input_frames``, ``blank``).
    """

    kind: str
    graph: nn.Module
    example: tuple[torch.Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    parity_inputs: list[tuple[torch.Tensor, ...]]
    metadata: dict[str, Any] = field(default_factory=dict)


def _randn(rng: np.random.Generator, *shape: int) -> torch.Tensor:
    return torch.from_numpy(rng.standard_normal(shape).astype(np.float32))


def keyword_spec(model: LoadedModel, rng: np.random.Generator) -> ExportSpec:
    """Keyword CNN: fixed frames when ``num_frames`` is set (the head pools over time, so any count works)."""
    cfg = model.feature_config
    frames = cfg.num_frames
    example = (_randn(rng, 1, cfg.num_features, frames or 101),)
    axes = {"features": {0: "batch"} if frames else {0: "batch", 2: "frames"}, "logits": {0: "batch"}}
    parity = [(_randn(rng, 3, cfg.num_features, frames or t),) for t in ((101,) if frames else (101, 37))]
    return ExportSpec("keyword", model.module, example, ["features"], ["logits"], axes, parity,
                      {"input_frames": frames})


class _CTCGraph(nn.Module):
    """``(B, F, T), (B,) -> (B, T', V) log-probs, (B,) lengths``, without packing (unmasked padding)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_probs, _ = self.net(features, None)
        return log_probs, self.net.output_lengths(lengths)


def ctc_spec(model: LoadedModel, rng: np.random.Generator) -> ExportSpec:
    """CTC recogniser: dynamic time axis; parity checked on one utterance at a time, at several lengths."""
    f = model.feature_config.num_features
    example = (_randn(rng, 1, f, 120), torch.tensor([120]))
    axes = {"features": {0: "batch", 2: "frames"}, "lengths": {0: "batch"},
            "log_probs": {0: "batch", 1: "out_frames"}, "out_lengths": {0: "batch"}}
    parity = [(_randn(rng, 1, f, t), torch.tensor([t])) for t in (37, 160, 301)]
    blank = getattr(getattr(model.module, "vocab", None), "blank", None)
    return ExportSpec("ctc", _CTCGraph(model.module.net), example, ["features", "lengths"],
                      ["log_probs", "out_lengths"], axes, parity, {"input_frames": None, "blank": blank})


def spec_for(model: LoadedModel, seed: int = 0) -> ExportSpec:
    """The :class:`ExportSpec` for the model's kind: any keyword network maps ``(B, F, T)`` to logits; a CTC
    model's ``net`` must give ``(log_probs, lengths)`` and have ``output_lengths``."""
    rng = np.random.default_rng(seed)
    if model.kind == "ctc":
        if not callable(getattr(getattr(model.module, "net", None), "output_lengths", None)):
            raise CheckpointError(f"{model.path}: a CTC model exports when its `net` has output_lengths(lengths); "
                                  f"{type(model.module).__name__} has none")
        return ctc_spec(model, rng)
    return keyword_spec(model, rng)


def _metadata(model: LoadedModel, spec: ExportSpec, calibration: dict | None) -> dict[str, str]:
    values = {"kind": spec.kind, "feature_config": model.feature_config.to_dict(), "labels": model.labels,
              "threshold": calibration, "model_class": type(model.module).__qualname__,
              "source_checkpoint": model.path.name, "inputs": spec.input_names, "outputs": spec.output_names,
              **spec.metadata}
    return {"kwslab_format": FORMAT, **{k: json.dumps(v) for k, v in values.items()}}


def _to_onnx_bytes(spec: ExportSpec, opset: int) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
        torch.onnx.export(spec.graph, spec.example, buf, dynamo=False, opset_version=opset,
                          input_names=spec.input_names, output_names=spec.output_names,
                          dynamic_axes=spec.dynamic_axes, do_constant_folding=True)
    return buf.getvalue()


def parity(spec: ExportSpec, session_model: OnnxModel) -> float:
    """Max absolute difference between PyTorch and ONNX Runtime over the spec's parity inputs."""
    worst = 0.0
    with torch.no_grad():
        for inputs in spec.parity_inputs:
            ref = spec.graph(*inputs)
            ref = ref if isinstance(ref, tuple) else (ref,)
            feeds = {n: t.numpy() for n, t in zip(session_model.input_names, inputs)}
            got = session_model.session.run(None, feeds)
            for r, g in zip(ref, got):
                worst = max(worst, float(np.max(np.abs(r.float().numpy() - g))) if r.is_floating_point()
                            else float(np.max(np.abs(r.numpy() - g))))
    return worst


def export_onnx(ckpt: str | Path, out: str | Path, *, opset: int = OPSET, tolerance: float = 1e-4,
                force: bool = True) -> dict:
    """Export a checkpoint to ONNX (written atomically, with the umask's mode) and check parity with PyTorch.

    ``force=False`` refuses an existing ``out`` before any work (the command's default; ``--force`` replaces it).

    Returns:
        ``{"path", "kind", "max_abs_diff", "bytes", "inputs", "outputs"}``.

    Raises:
        CheckpointError: the checkpoint cannot be loaded or has no exporter.
        OnnxModelError: ONNX Runtime differs from PyTorch by more than ``tolerance`` (nothing is written).
        OutputExistsError: ``out`` is a folder, or exists and ``force`` is False.
    """
    import onnx

    out = check_output(out, force)
    model = load_model(ckpt)
    spec = spec_for(model)
    spec.graph.eval()
    proto = onnx.load_from_string(_to_onnx_bytes(spec, opset))
    for key, value in _metadata(model, spec, model.checkpoint.get(CALIBRATION_KEY)).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "kwslab"
    onnx.checker.check_model(proto)
    found: dict[str, float] = {}

    def check_parity(tmp: str) -> None:
        found["diff"] = diff = parity(spec, OnnxModel(tmp))
        if not diff <= tolerance:
            raise OnnxModelError(f"{out}: ONNX Runtime differs from PyTorch by {diff:.3g} (> {tolerance:g}); "
                                 "not written")

    atomic_write(out, lambda f: f.write(proto.SerializeToString()), check_parity)
    diff = found["diff"]
    return {"path": str(out), "kind": spec.kind, "max_abs_diff": diff, "bytes": out.stat().st_size,
            "inputs": spec.input_names, "outputs": spec.output_names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kwslab.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="checkpoint written by python -m kwslab.fit")
    parser.add_argument("--out", required=True,
                        help="the .onnx file to write (a new file gets the umask's mode; an existing one is refused "
                             "unless --force)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists (keeping its mode)")
    add_allow_class_argument(parser)
    parser.add_argument("--opset", type=positive_int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    parser.add_argument("--tolerance", type=positive_float, default=1e-4,
                        help="largest allowed |PyTorch - ONNX Runtime| on the outputs (default 1e-4)")
    args = parser.parse_args(argv)
    try:
        with allowed_classes(args.allow_class):
            result = export_onnx(args.ckpt, args.out, opset=args.opset, tolerance=args.tolerance, force=args.force)
    except (CheckpointError, OnnxModelError, OutputExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the folder of --out is read-only, the disk is full...
        print(f"error: --out {args.out}: cannot write it ({exc.strerror or type(exc).__name__})", file=sys.stderr)
        return 2
    print(f"wrote {result['path']} ({result['kind']} model, {result['bytes'] / 1024:.0f} KiB; inputs "
          f"{', '.join(result['inputs'])}; outputs {', '.join(result['outputs'])})")
    print(f"parity with PyTorch: max |difference| = {result['max_abs_diff']:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

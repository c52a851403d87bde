"""The census of public architectures: torchvision, timm and Hugging Face transformers models with random weights,
exported to ONNX by torch.onnx.export (opset 17), converted by kgen for each backend and run in headless Chromium
against onnxruntime on the same file. Per architecture: the export, whether kgen converts it (or its one-line
error), the conversion time, and per backend whether it loads and matches.

    pip install -e '.[census]'          # torch, torchvision, timm, transformers: never needed by make test
    python -m bench.architectures [--backend wasm ...] [--only resnet18,bert] [--out results/architectures.json]

The rows measured replace those of the same architectures in --out, whose other rows are kept; each row names its
date and commit.

Transformers are built from their configs with 2 layers (the ops are those of the full depth); images are 224²
(Inception-v3 299²), token sequences 32. A refusal is a row of the census, not a failure of the run; the run
exits 1 when a model that converts gives a wrong answer, or when converting one crashes (an error that is not
kgen's one-line refusal)."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.store import code_version, replace_rows
from kgen.atomic import write_text_atomic
from kgen.checking import compare_model
from kgen.descriptor.convert import convert
from kgen.errors import KgenError
from kgen.graph import zoo

BACKENDS = ("wasm", "js", "webgpu", "webgl")
TOKENS = 32
OPSET = 17


def _vision(library: str, name: str, size: int = 224) -> Callable[[], tuple[Any, dict[str, Any]]]:
    def build():
        import torch

        if library == "torchvision":
            import torchvision

            model = torchvision.models.get_model(name, weights=None)
        else:
            import timm

            model = timm.create_model(name, pretrained=False)
        return model, {"pixel_values": torch.randn(1, 3, size, size)}

    return build


#: a small decoder of today's families (the defaults are billions of parameters): 2 layers of width 512, 8 heads
_DECODER = {
    "num_hidden_layers": 2,
    "hidden_size": 512,
    "intermediate_size": 1376,
    "num_attention_heads": 8,
    "vocab_size": 4096,
    "use_cache": False,
}

#: Hugging Face families: (config class, model class, config fields). Where the defaults are a large model (the
#: decoders), a small one of the same structure: grouped-query attention where the family has it.
TEXT: dict[str, tuple[str, str, dict[str, Any]]] = {
    "bert": ("BertConfig", "BertModel", {"num_hidden_layers": 2}),
    "distilbert": ("DistilBertConfig", "DistilBertModel", {"n_layers": 2}),
    "gpt2": ("GPT2Config", "GPT2Model", {"n_layer": 2}),
    "roberta": ("RobertaConfig", "RobertaModel", {"num_hidden_layers": 2}),
    "albert": ("AlbertConfig", "AlbertModel", {"num_hidden_layers": 2}),
    "electra": ("ElectraConfig", "ElectraModel", {"num_hidden_layers": 2}),
    "t5_encoder": ("T5Config", "T5EncoderModel", {"num_layers": 2, "vocab_size": 4096}),
    "clip_text": ("CLIPTextConfig", "CLIPTextModel", {"num_hidden_layers": 2}),
    "llama": ("LlamaConfig", "LlamaModel", {**_DECODER, "num_key_value_heads": 2}),
    "qwen2": ("Qwen2Config", "Qwen2Model", {**_DECODER, "num_key_value_heads": 2}),
    "mpnet": ("MPNetConfig", "MPNetModel", {"num_hidden_layers": 2}),
    "bart": (
        "BartConfig",
        "BartModel",
        {
            "encoder_layers": 2,
            "decoder_layers": 2,
            "vocab_size": 4096,
            "d_model": 512,
            "encoder_ffn_dim": 2048,
            "decoder_ffn_dim": 2048,
            "encoder_attention_heads": 8,
            "decoder_attention_heads": 8,
        },
    ),
    "opt": ("OPTConfig", "OPTModel", {"num_hidden_layers": 2}),
    "phi3": ("Phi3Config", "Phi3Model", {**_DECODER, "num_key_value_heads": 8, "pad_token_id": 0}),
    "gemma": ("GemmaConfig", "GemmaModel", {**_DECODER, "num_key_value_heads": 1, "head_dim": 64}),
    "vit_hf": ("ViTConfig", "ViTModel", {"num_hidden_layers": 2}),
    "dinov2": ("Dinov2Config", "Dinov2Model", {"num_hidden_layers": 2}),
    "segformer": ("SegformerConfig", "SegformerModel", {}),
    "whisper_encoder": (
        "WhisperConfig",
        "WhisperModel",
        {
            "encoder_layers": 2,
            "d_model": 384,
            "encoder_attention_heads": 6,
            "encoder_ffn_dim": 1536,
            "max_source_positions": 200,
        },
    ),
}


def _text(family: str) -> Callable[[], tuple[Any, dict[str, Any]]]:
    def build():
        import torch
        import transformers

        config_name, model_name, fields = TEXT[family]
        config = getattr(transformers, config_name)(**fields)
        model = getattr(transformers, model_name)(config)
        if family in ("vit_hf", "dinov2", "segformer"):
            return model, {"pixel_values": torch.randn(1, 3, 224, 224)}
        if family == "whisper_encoder":  # log-mel frames: twice the encoder's positions
            return model.encoder, {
                "input_features": torch.randn(1, config.num_mel_bins, 2 * config.max_source_positions)
            }
        ids = torch.randint(0, 1000, (1, TOKENS))
        mask = torch.ones(1, TOKENS, dtype=torch.int64)
        mask[:, -TOKENS // 4 :] = 0
        return model, {"input_ids": ids, "attention_mask": mask}

    return build


ARCHITECTURES: dict[str, Callable[[], tuple[Any, dict[str, Any]]]] = {
    **{
        name: _vision("torchvision", name)
        for name in (
            "alexnet",
            "vgg11",
            "resnet18",
            "resnet50",
            "squeezenet1_1",
            "densenet121",
            "googlenet",
            "mobilenet_v2",
            "mobilenet_v3_small",
            "mobilenet_v3_large",
            "shufflenet_v2_x1_0",
            "mnasnet0_5",
            "efficientnet_b0",
            "regnet_y_400mf",
            "convnext_tiny",
            "vit_b_16",
            "swin_t",
            "swin_v2_t",
            "maxvit_t",
            "efficientnet_v2_s",
            "resnext50_32x4d",
            "wide_resnet50_2",
            "regnet_x_400mf",
            "vgg11_bn",
        )
    },
    "inception_v3": _vision("torchvision", "inception_v3", 299),
    **{name: _vision("timm", name) for name in ("deit_tiny_patch16_224", "ghostnet_100", "mobilevit_s")},
    **{name: _text(name) for name in TEXT},
}


def export(name: str, path: Path) -> dict[str, np.ndarray]:
    """Write the architecture's ONNX file; the inputs it was traced with, as numpy arrays."""
    import torch

    model, inputs = ARCHITECTURES[name]()

    class Positional(torch.nn.Module):
        """The inputs in order, by name to a Hugging Face model (whose last hidden state is the output)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            if hasattr(self.model, "config"):
                return self.model(**dict(zip(inputs, tensors, strict=True))).last_hidden_state
            return self.model(*tensors)

    wrapped = Positional().eval()
    torch.backends.mha.set_fastpath_enabled(False)  # torchvision's ViT: the exporter has no fused attention
    with torch.no_grad():
        torch.onnx.export(
            wrapped, tuple(inputs.values()), str(path), input_names=list(inputs), opset_version=OPSET, dynamo=False
        )
    return {k: v.numpy() for k, v in inputs.items()}


def census_row(name: str, backends: list[str], work: Path) -> dict[str, Any]:
    from kgen.browser.model_run import run_model

    row: dict[str, Any] = {"architecture": name}
    path = work / f"{name}.onnx"
    t0 = time.perf_counter()
    try:
        feeds = export(name, path)
    except Exception as err:  # an exporter's failure is the row's finding, as kgen's refusal is
        row["export_error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
        return row
    row["export_s"] = round(time.perf_counter() - t0, 1)
    wants = zoo.onnxruntime_outputs(path, feeds)
    t0 = time.perf_counter()
    try:
        summary = convert(path, work / name, backends, force=True)
    except KgenError as err:
        row["refused"] = str(err)
        return row
    row["convert_s"] = round(time.perf_counter() - t0, 1)
    row["nodes"] = [summary["nodes_before"], summary["nodes_after"]]
    row["backends"] = {b: {"converted": False, "error": e} for b, e in summary["failed"].items()}
    for backend in backends:
        if backend in summary["failed"]:
            continue
        try:
            result = run_model(work / name, backend, feeds)
        except KgenError as err:
            row["backends"][backend] = {"converted": True, "ran": False, "error": str(err)[:300]}
            continue
        outputs = list(result["outputs"].values())
        checks = [
            compare_model(got.reshape(want.shape), want, backend) for got, want in zip(outputs, wants, strict=False)
        ]
        row["backends"][backend] = {
            "converted": True,
            "ran": True,
            "matches": all(c.ok for c in checks),
            "max_abs_error": max(c.max_abs_error for c in checks),
            "first_run_ms": round(result["first_run_ms"], 1),
        }
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.architectures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=BACKENDS, help="backends to convert for (default all)")
    parser.add_argument("--only", help="comma-separated architectures (default: all)")
    parser.add_argument("--out", type=Path, default=Path("results/architectures.json"))
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(ARCHITECTURES)
    unknown = [n for n in names if n not in ARCHITECTURES]
    if unknown:
        parser.error(f"unknown architecture {unknown[0]} (known: {', '.join(ARCHITECTURES)})")
    backends = args.backend or list(BACKENDS)
    stamp = {"date": time.strftime("%Y-%m-%d"), **code_version()}
    rows = []
    with tempfile.TemporaryDirectory(prefix="kgen-architectures-") as tmp:
        for name in names:
            try:
                row = census_row(name, backends, Path(tmp))
            except Exception:  # a crash of the census itself: recorded, and the census goes on
                row = {"architecture": name, "crash": traceback.format_exc(limit=3)[-600:]}
            rows.append({**stamp, **row})
            print(_line(row, backends), flush=True)
    rows = replace_rows(args.out, rows, key=lambda r: r["architecture"])
    backends = [b for b in BACKENDS if any(b in r.get("backends", {}) for r in rows)]
    converted = [r for r in rows if "backends" in r]
    wrong = [r["architecture"] for r in converted for b in r["backends"].values() if b.get("ran") and not b["matches"]]
    summary = {
        "opset": OPSET,
        "backends": backends,
        "architectures": len(rows),
        "exported": sum("export_error" not in r for r in rows),
        "converted": len(converted),
        "matching_everywhere": sum(
            all(b.get("matches") for b in r["backends"].values()) and len(r["backends"]) == len(backends)
            for r in converted
        ),
        "wrong": wrong,
        "crashed": [r["architecture"] for r in rows if "crash" in r],
        "rows": rows,
    }
    write_text_atomic(args.out, json.dumps(summary, indent=1) + "\n")
    print(
        f"{summary['converted']} of {summary['exported']} exported architectures convert, "
        f"{summary['matching_everywhere']} match onnxruntime on {', '.join(backends)}; wrote {args.out}"
    )
    return 1 if wrong or summary["crashed"] else 0


def _line(row: dict[str, Any], backends: list[str]) -> str:
    name = f"{row['architecture']:<24}"
    if "export_error" in row:
        return f"{name} not exported: {row['export_error']}"
    if "crash" in row:
        return f"{name} CRASHED: {row['crash'].splitlines()[-1]}"
    if "refused" in row:
        return f"{name} refused: {row['refused']}"
    cells = []
    for b in backends:
        r = row["backends"].get(b, {})
        cells.append(f"{b} " + ("ok" if r.get("matches") else "WRONG" if r.get("ran") else "failed"))
    return f"{name} converts in {row['convert_s']:.1f} s; " + ", ".join(cells)


if __name__ == "__main__":
    raise SystemExit(main())

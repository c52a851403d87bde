"""bench.models on the DCGAN generator: kgen, ONNX Runtime Web and TF.js (the network rebuilt from tf ops with the
same weights by bench/tfjs_network.py) all compute onnxruntime's output, and each side's peak memory is counted
by the same hooks (bench/peers/memory.js). TF.js builds the image nets and a BERT-like encoder of token ids too."""

import json
import math
import subprocess
import sys
from subprocess import DEVNULL

import pytest

from bench.tfjs_network import describe, network
from kgen.errors import KgenError
from kgen.graph import zoo

pytestmark = pytest.mark.browser


RUN = """
import json, sys
from bench import models
from kgen.graph import zoo
zoo.MODELS["resnet50_32"] = lambda: zoo.resnet50(size=32)
zoo.MODELS["mobilenet_v2_32"] = lambda: zoo.mobilenet_v2(size=32)
zoo.MODELS["bert_small"] = lambda: zoo.bert()
zoo.MODELS["mobilenet_v3_large_32"] = lambda: zoo.mobilenet_v3(size=32, large=True)
report = models.run(["dcgan"], rounds=1, samples=5, backends=["wasm"], records="none", warmup_ms=200)["models"]
nets = ["resnet50_32", "mobilenet_v2_32", "mobilenet_v3_large_32", "bert_small", "vit"]  # TF.js's networks
report |= models.run(
    nets, rounds=1, samples=5, backends=["wasm"], records="none", peers=["tfjs"], warmup_ms=200, threads=[1]
)["models"]
sys.stdout.write("REPORT " + json.dumps(report))
"""


@pytest.fixture(scope="module")
def report():
    """The DCGAN generator, and ResNet-50, the MobileNet-v2 and v3-large-like nets and a ViT on 32x32 images and a
    2-layer BERT-like encoder (every op and fusion of the TF.js networks at a small cost); in a process of its
    own, since the suite's browser holds Playwright's sync API in this one."""
    done = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, timeout=600, stdin=DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return {"models": json.loads(done.stdout.split("REPORT ", 1)[1])}


@pytest.mark.parametrize("model", ["resnet50_32", "mobilenet_v2_32", "mobilenet_v3_large_32", "bert_small", "vit"])
def test_tfjs_builds_the_same_network_from_tf_ops(report, model):
    sides = report["models"][model]["sides"]
    assert set(sides) == {"kgen wasm 1t", "tfjs wasm 1t"}  # threads=[1]: no 2-thread side
    assert all(v["all_ok"] for v in sides.values()), {s: v["all_ok"] for s, v in sides.items()}


def test_every_side_matches_onnxruntime_and_has_its_memory_counted(report):
    entry = report["models"]["dcgan"]
    assert set(entry["sides"]) == {"kgen wasm 1t", "ort wasm 1t", "tfjs wasm 1t", "kgen wasm 2t", "ort wasm 2t"}
    for side, v in entry["sides"].items():
        assert v["all_ok"], f"{side} computed something else than onnxruntime"
        assert v["median_ms"] > 0 and v["cold_ms"] >= v["median_ms"]
        assert v["peak_memory"]["wasmBytes"] >= 64 * 1024, side  # at least one wasm page: the hooks saw it
    for side in ("kgen wasm 1t", "kgen wasm 2t"):  # the model's FLOPs over the relaxed-SIMD peak timed beside it
        v = entry["sides"][side]
        assert v["gflops"] > 0 and v["peak_gflops"] > 1
        assert 0 < v["peak_share_low"] <= v["peak_share"] <= v["peak_share_high"] < 1.2
    assert "peak_share" not in entry["sides"]["ort wasm 1t"]
    assert entry["sides"]["tfjs wasm 1t"]["version"] == "4.22.0"
    assert set(entry["ratios"]) == {"wasm 1t", "wasm 2t"}
    assert entry["ratios"]["wasm 2t"]["best_peer"] == "ort"  # TF.js is compared on 1 thread only


def test_the_tf_network_keeps_every_weight_once_in_tfjs_layouts():
    desc, blob = network(zoo.resnet50())
    assert desc["inputs"] == [{"name": "input", "dims": [1, 224, 224, 3], "dtype": "float32"}]
    assert desc["output_nchw"] is None
    assert len(blob) == 4 * sum(math.prod(w["dims"]) for w in desc["weights"].values())
    first = next(n for n in desc["nodes"] if n["op"] == "Conv")
    assert desc["weights"][first["inputs"][1]]["dims"] == [7, 7, 3, 64]  # HWIO
    desc, _ = network(zoo.dcgan_generator())
    assert desc["output_nchw"] == [1, 1, 28, 28]
    with pytest.raises(KgenError, match=r"node .*\(Softmax\): no tf translation"):
        network(zoo.mlp())


def test_a_token_models_tf_network_takes_int32_ids_and_reshapes_to_static_shapes():
    """BERT's int64 ids and mask go in as int32, its constant position ids are an int32 weight, and a reshape or
    unsqueeze is to its output's shape as ONNX's shape inference gives it; an op without a translation is refused
    naming its node."""
    desc, blob = describe(zoo.bert(tokens=16, dim=32, heads=4))
    assert [(i["name"], i["dims"], i["dtype"]) for i in desc["inputs"]] == [
        (name, [1, 16], "int32") for name in ("input_ids", "token_type_ids", "attention_mask")
    ]
    assert len(blob) == 4 * sum(math.prod(w["dims"]) for w in desc["weights"].values())
    assert {w["dtype"] for w in desc["weights"].values()} == {"float32", "int32"}
    heads = [n["attrs"]["shape"] for n in desc["nodes"] if n["op"] == "Reshape"]
    assert [1, 16, 4, 8] in heads and [1, 1, 1, 16] in heads and all(-1 not in s and 0 not in s for s in heads)
    with pytest.raises(KgenError, match=r"node equal_7 \(Equal\): no tf translation of ONNX op Equal"):
        describe(zoo.roberta())

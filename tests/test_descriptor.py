"""Converted models run natively (wasm through wasmtime, WGSL through wgpu-py) and match onnxruntime; what the
descriptor holds (sizes, memory plan, encodings); a failed conversion leaves nothing behind."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import kgen
from kgen import backends
from kgen.checking import compare_model
from kgen.descriptor import weights as wt
from kgen.descriptor.assemble import Options
from kgen.descriptor.convert import convert
from kgen.descriptor.nodes import choose
from kgen.descriptor.schema import DescriptorError, read_backend, read_model, read_weights
from kgen.errors import KgenError
from kgen.graph import zoo
from kgen.graph.ir import Graph, Node, Value
from kgen.native import model as native
from kgen.ops import Workload, get_op
from kgen.records.store import Record, RecordStore
from kgen.scheduling.space import DEFAULT_LIMITS


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    for name in ("mlp", "dcgan", "mobilenet_v2", "resnet50"):
        zoo.save(zoo.MODELS[name](), folder / f"{name}.onnx")
    return folder


def test_webgl_records_of_the_kernel_suite_set_a_models_layouts(onnx_dir, tmp_path):
    """A model node's inputs are named as its op names them (input, weight, bias), so the layout knobs of a
    WebGL record (layout_input, layout_weight) are the node's own: the records apply to ResNet-50's fused
    nodes, where before every one was refused for unknown knobs (layout_in0, ...) and ran the default."""
    store = RecordStore("results/bench/webgl_records.jsonl")
    summary = convert(onnx_dir / "resnet50.onnx", tmp_path / "gl", ["webgl"], options=Options(records=store))
    chosen = summary["backends"]["webgl"]["chosen"]
    assert chosen.get("exact", 0) >= 10 and chosen.get("nearest", 0) >= 10
    nodes = read_backend(tmp_path / "gl", read_model(tmp_path / "gl"), "webgl")["nodes"]
    assert not any("not valid here" in n["note"] for n in nodes)
    stem = nodes[0]
    assert stem["how"] == "exact" and "layout_input" in stem["config"] and "layout_bias" in stem["config"]


@pytest.mark.parametrize(
    ("name", "backends"), [("mlp", "wasm,webgpu"), ("dcgan", "wasm,webgpu"), ("mobilenet_v2", "wasm")]
)
def test_converted_models_match_onnxruntime_natively(onnx_dir, tmp_path, name, backends):
    path = onnx_dir / f"{name}.onnx"
    out = tmp_path / name
    convert(path, out, backends.split(","))
    model = zoo.MODELS[name]()
    feeds = zoo.seeded_inputs(model)
    (want,) = zoo.onnxruntime_outputs(path, feeds)
    for backend in backends.split(","):
        (got,) = native.run(out, backend, feeds).values()
        result = compare_model(got, want, backend)
        assert result.ok, f"{name} on {backend}: {result}"


def test_a_wasm_program_ships_its_modules_and_keeps_their_text_beside(onnx_dir, tmp_path):
    """The page compiles binaries: a wasm program file holds them alone, and the modules' text (five times the
    bytes) goes to <variant>.wat, which the page never fetches; a js program keeps its source, the code it runs."""
    convert(onnx_dir / "dcgan.onnx", tmp_path / "d", ["wasm", "js"])
    model = read_model(tmp_path / "d")
    kernels = read_backend(tmp_path / "d", model, "wasm")["program"]["kernels"]
    assert kernels and all("binary" in k and "source" not in k for k in kernels)
    text = (tmp_path / "d" / "wasm.wat").read_text()
    assert text.count("(module") == len(kernels) and all(f";; kernel {k['name']}\n" in text for k in kernels)
    assert len(text) > 2 * (tmp_path / "d" / "wasm.json").stat().st_size
    variants = [v["file"].removesuffix(".json") for v in model["backends"]["wasm"]["variants"]]
    assert all((tmp_path / "d" / f"{v}.wat").is_file() for v in variants) and not (tmp_path / "d" / "js.wat").exists()
    js = read_backend(tmp_path / "d", model, "js")["program"]["kernels"]
    assert all(k["source"] and "binary" not in k for k in js)


def test_candidates_are_other_configs_with_their_prepare_kernels_and_only_where_asked(onnx_dir, tmp_path):
    """--candidates K: per flat-storage program a candidates file (size, digest and the device classes of its
    records in model.json) of up to K-1 configs per node, each other than the node's own and than each other, whose
    kernels (and prepare kernels) bind only the program's buffers; a record of another device class is one."""
    other = Record.measured(
        Workload.create(
            "conv_transpose2d", [[1, 128, 7, 7], [128, 64, 4, 4]], {"strides": [2, 2], "pads": [1, 1, 1, 1]}
        ),
        "wasm",
        {"hardwareConcurrency": 16},
        {"tile_b": 4, "tile_a": 2, "threads": 1},
        1.0,
        0.0,
        7,
        "",
        "test",
    )
    gemm = Workload.create("gemm", [[1, 110], [110, 6272], [6272]], {})
    own = Record.measured(gemm, "wasm", {"hardwareConcurrency": 2}, {"threads": 1}, 1.0, 0.0, 7, "", "test")
    store = RecordStore(tmp_path / "records.jsonl")
    store.add([other, own])  # the conversion takes wasm-2threads' records: wasm-16threads' is a candidate
    options = Options(store, candidates=3)
    convert(onnx_dir / "dcgan.onnx", tmp_path / "d", ["wasm", "js", "webgl"], options=options)
    model = read_model(tmp_path / "d")
    assert "candidates" not in model["backends"]["webgl"]["variants"][0]  # textures: not yet
    for backend in ("wasm", "js"):
        entry = model["backends"][backend]["variants"][0]["candidates"]
        data = (tmp_path / "d" / entry["file"]).read_bytes()
        assert entry["bytes"] == len(data) and entry["sha256"] == wt.digest(data)
        doc = json.loads(data)
        program = read_backend(tmp_path / "d", model, backend)["program"]
        buffers = {b["name"] for b in program["buffers"]}
        assert doc["nodes"] and doc["tolerance"] == list(backends.get(backend).tolerance)
        for node in doc["nodes"]:
            configs = [json.dumps(o["config"], sort_keys=True) for o in node["options"]]
            assert 1 <= len(configs) <= 2 and len(set(configs)) == len(configs)
            assert json.dumps(node["config"], sort_keys=True) not in configs
            assert node["output"] in buffers and program["prepare"] <= node["first"] < node["end"]
            for o in node["options"]:
                assert o["kernels"] and isinstance(o["prepare"], list)
                assert all(b["buffer"] in buffers for k in (*o["prepare"], *o["kernels"]) for b in k["bindings"])
    wasm = json.loads((tmp_path / "d" / "wasm.candidates.json").read_text())
    assert model["backends"]["wasm"]["variants"][0]["candidates"]["devices"] == ["wasm-16threads"]
    assert any(o["device"] == "wasm-16threads" for n in wasm["nodes"] for o in n["options"])
    convert(onnx_dir / "dcgan.onnx", tmp_path / "plain", ["wasm"], options=Options(store))
    assert not list((tmp_path / "plain").glob("*.candidates.json"))


def test_resnet50_converts_for_every_flat_backend_and_matches_onnxruntime(onnx_dir, tmp_path):
    out = tmp_path / "resnet50"
    summary = convert(onnx_dir / "resnet50.onnx", out, ["wasm", "js", "webgpu"])
    assert (summary["nodes_before"], summary["nodes_after"]) == (175, 57)
    for backend, b in summary["backends"].items():
        m = b["memory"]
        assert m["activation_peak_bytes"] <= 0.3 * m["activation_sum_bytes"], backend
        assert b["reused_programs"] > 0  # ResNet's repeated blocks are generated once
    feeds = zoo.seeded_inputs(zoo.resnet50())
    (want,) = zoo.onnxruntime_outputs(onnx_dir / "resnet50.onnx", feeds)
    (got,) = native.run(out, "wasm", feeds).values()
    assert compare_model(got, want, "wasm").ok
    model = read_model(out)
    shards = model["weights"]["shards"]
    assert len(shards) > 1 and all(s["bytes"] <= wt.SHARD_BYTES for s in shards)


@pytest.mark.parametrize(("encoding", "ratio"), [("fp16", 0.5), ("eightbit", 0.27)])
def test_encodings_shrink_resnet50_and_agree_with_fp32(onnx_dir, tmp_path, encoding, ratio):
    out = tmp_path / encoding
    summary = convert(onnx_dir / "resnet50.onnx", out, ["wasm"], encoding=encoding)
    assert summary["weight_ratio"] <= ratio
    assert summary["agreement"]["cosine"] >= 0.995 and summary["agreement"]["top1_same"]
    model = zoo.resnet50()
    agree = 0
    for seed in range(2):
        feeds = zoo.seeded_inputs(model, seed)
        (want,) = zoo.onnxruntime_outputs(onnx_dir / "resnet50.onnx", feeds)
        (got,) = native.run(out, "wasm", feeds).values()
        assert compare_model(got, want, "wasm", encoding).ok
        agree += int(got.argmax() == want.argmax())
    assert agree == 2


def test_eightbit_round_trip_is_within_half_a_step():
    rng = np.random.default_rng(0)
    array = rng.standard_normal(1000).astype(np.float32) * np.linspace(0.01, 3, 1000, dtype=np.float32)
    data = wt.encode_tensor(array, "eightbit")
    assert len(data) == wt.encoded_bytes(1000, "eightbit")
    back = wt.decode_tensor(data, 1000, "eightbit")
    blocks = array.reshape(-1)[:768].reshape(3, 256)
    step = np.abs(blocks).max(axis=1) / 127
    assert np.all(np.abs(back[:768].reshape(3, 256) - blocks) <= step[:, None] / 2 + 1e-7)


def test_records_choose_kernels_exact_nearest_or_default(onnx_dir, tmp_path):
    store = RecordStore("results/bench/wasm_records.jsonl")
    summary = convert(onnx_dir / "resnet50.onnx", tmp_path / "tuned", ["wasm"], options=Options(records=store))
    chosen = summary["backends"]["wasm"]["chosen"]
    assert chosen.get("exact", 0) >= 15 and chosen.get("nearest", 0) > 0 and chosen.get("default", 0) > 0
    nodes = read_backend(tmp_path / "tuned", read_model(tmp_path / "tuned"), "wasm")["nodes"]
    exact = next(n for n in nodes if n["how"] == "exact")
    assert exact["record"].startswith("conv2d/") and exact["config"]["threads"] == 1
    feeds = zoo.seeded_inputs(zoo.resnet50())
    (want,) = zoo.onnxruntime_outputs(onnx_dir / "resnet50.onnx", feeds)
    (got,) = native.run(tmp_path / "tuned", "wasm", feeds).values()
    assert compare_model(got, want, "wasm").ok


def test_existing_output_and_failed_conversions_leave_nothing(onnx_dir, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    with pytest.raises(KgenError, match="already exists"):
        convert(onnx_dir / "mlp.onnx", out, ["wasm"])
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(KgenError):
        convert(bad, tmp_path / "never", ["wasm"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx", "model"]


def too_large_for_a_texture(path):
    """A model whose tensor (8200 x 8200 values) needs more texels than a 4096 x 4096 texture holds, even 4
    values a texel."""
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    info = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [8200, 8200]) for n in ("x", "y")]
    graph = helper.make_graph([node], "big", info[:1], info[1:])
    return zoo.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_a_backend_that_fails_is_reported_and_skipped(tmp_path):
    summary = convert(too_large_for_a_texture(tmp_path / "big.onnx"), tmp_path / "m", ["webgl", "js"])
    assert "does not fit in one texture" in summary["failed"]["webgl"] and list(summary["backends"]) == ["js"]
    assert list(read_model(tmp_path / "m")["backends"]) == ["js"]


def test_reader_refuses_changed_files(onnx_dir, tmp_path):
    out = tmp_path / "m"
    convert(onnx_dir / "mlp.onnx", out, ["wasm"])
    model = read_model(out)
    shard = out / model["weights"]["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DescriptorError, match="weight shard corrupted"):
        read_weights(out, model)
    program = out / "wasm.json"
    program.write_text(program.read_text()[:-10])
    with pytest.raises(DescriptorError, match="corrupted"):
        read_backend(out, model, "wasm")
    (out / "model.json").write_text(json.dumps({**model, "schema_version": 2}))
    with pytest.raises(DescriptorError, match="schema_version 2 is not supported"):
        read_model(out)


def test_a_node_fastest_on_one_thread_runs_on_one_in_a_threaded_program(onnx_dir, tmp_path):
    """DCGAN's last transposed conv (64 -> 1 channels) was tuned faster on 1 thread than on 2 (the shipped
    records): in the 2-thread program its kernels run on the page's thread alone, the others on both."""
    store = RecordStore("results/records.jsonl")
    convert(onnx_dir / "dcgan.onnx", tmp_path / "d", ["wasm"], options=Options(store, threads=2))
    program = read_backend(tmp_path / "d", read_model(tmp_path / "d"), "wasm")["program"]
    threads = {k["name"].split("_")[0]: k["threads"] for k in program["kernels"]}
    assert threads == {"n0": 2, "n1": 2, "n2": 1}
    feeds = zoo.seeded_inputs(zoo.dcgan_generator())
    (want,) = zoo.onnxruntime_outputs(onnx_dir / "dcgan.onnx", feeds)
    (got,) = native.run(tmp_path / "d", "wasm", feeds).values()
    assert compare_model(got, want, "wasm").ok


def test_a_nearer_record_whose_config_does_not_fit_the_node_gives_way_to_the_next(tmp_path):
    """A conv on 56x56 with no record of its own: the nearest record (42x42) is wrapped, a knob that 56x56 rows
    lack, so the next nearest (112x112) serves, not the template default."""
    values = {"x": Value("x", (1, 8, 56, 56)), "w": Value("w", (8, 8, 3, 3)), "y": Value("y", (1, 8, 56, 56))}
    node = Node("c", "conv2d", ["x", "w"], "y", {"pads": (1, 1, 1, 1)})
    graph = Graph([values["x"]], ["y"], values, {"w": np.zeros((8, 8, 3, 3), np.float32)}, [node])
    base = {"tile_axis": "m", "tile_a": 6, "tile_b": 8, "unroll": 2, "vector": "f32x4_fma", "threads": 1}
    store = RecordStore(tmp_path / "records.jsonl")
    for side, config in ((42, {**base, "merge_hw": 1, "wrap": 1}), (112, {**base, "pad": 1})):
        workload = Workload.create("conv2d", [(1, 8, side, side), (8, 8, 3, 3)], {"pads": (1, 1, 1, 1)})
        store.add([Record.measured(workload, "wasm", {"hardwareConcurrency": 2}, config, 1.0, 0.0, 5, "d", "test")])
    limits = {**DEFAULT_LIMITS, "max_threads": 1, "relaxed_simd": 1}
    choice = choose(graph, node, "wasm", store, "wasm-2threads", {"threads": 1}, limits)
    assert choice.how == "nearest" and choice.record is not None and "112x112" in choice.record.key


def test_the_bare_convs_record_of_the_same_attributes_beats_a_biased_convs_of_other_attributes(tmp_path):
    """DeiT's patch conv (16x16, stride 16, with bias): the bare conv's own record serves it, not the nearest
    biased conv of another stride and padding, which lookup takes only where no record of the same attributes
    is there."""
    values = {"x": Value("x", (1, 3, 32, 32)), "w": Value("w", (8, 3, 4, 4)), "b": Value("b", (8,))}
    values["y"] = Value("y", (1, 8, 8, 8))
    attrs = {"strides": (4, 4)}
    node = Node("c", "conv2d", ["x", "w", "b"], "y", attrs)
    weights = {"w": np.zeros((8, 3, 4, 4), np.float32), "b": np.zeros(8, np.float32)}
    graph = Graph([values["x"]], ["y"], values, weights, [node])
    base = {"tile_axis": "m", "tile_a": 4, "tile_b": 8, "unroll": 2, "vector": "f32x4_fma", "threads": 1}
    store = RecordStore(tmp_path / "records.jsonl")
    biased = Workload.create("conv2d", [(1, 3, 32, 32), (8, 3, 3, 3), (8,)], {"pads": (1, 1, 1, 1)})
    bare = Workload.create("conv2d", [(1, 3, 32, 32), (8, 3, 4, 4)], attrs)
    fingerprint = {"hardwareConcurrency": 2}
    for workload, unroll in ((biased, 1), (bare, 2)):
        config = {**base, "unroll": unroll}
        store.add([Record.measured(workload, "wasm", fingerprint, config, 1.0, 0.0, 5, "d", "test")])
    limits = {**DEFAULT_LIMITS, "max_threads": 1, "relaxed_simd": 1}
    choice = choose(graph, node, "wasm", store, "wasm-2threads", {"threads": 1}, limits)
    assert (choice.how, choice.config["unroll"]) == ("exact", 2)


def test_a_reshape_on_webgl_writes_the_layout_its_consumer_reads_so_no_conversion_follows(tmp_path):
    """A view is a copy on WebGL: written in the layout the matmul after it reads (its record's), it replaces the
    conversion kernel that a reshape in its own default layout needs before the matmul."""
    from kgen.descriptor.nodes import NodeCache, space
    from kgen.descriptor.webgl import assemble_webgl

    values = {"x": Value("x", (1, 8, 32)), "w": Value("w", (32, 16)), "r": Value("r", (8, 32))}
    values["y"] = Value("y", (8, 16))
    nodes = [Node("v", "reshape", ["x"], "r", {"shape": (8, 32)}), Node("m", "matmul", ["r", "w"], "y", {})]
    graph = Graph([values["x"]], ["y"], values, {"w": np.ones((32, 16), np.float32)}, nodes)
    matmul = Workload.create("matmul", [(8, 32), (32, 16)])
    config = {**space(matmul, "webgl").default(), "layout_A": "rgba_last"}
    store = RecordStore(tmp_path / "records.jsonl")
    fields = {"median_ms": 1.0, "iqr_ms": 0.0, "samples": 7, "gflops": 1.0, "digest": "", "source": "test"}
    store.add([Record(json.loads(matmul.to_json()), matmul.key, "webgl", "webgl-test", config, **fields)])
    program, *_, nodes_json, _ = assemble_webgl(graph, store, "webgl-test", NodeCache(), 8)
    assert [k["name"].split("_")[0] for k in program["kernels"]] == ["n0", "n1"]  # no conversion between them
    assert nodes_json[0]["config"]["layout_out"] == "rgba_last"


def test_a_transpose_on_webgl_reads_as_produced_and_writes_what_attention_reads_so_no_conversion_is_around_it(
    tmp_path,
):
    """A transpose only moves values: whatever layouts its record names, it reads its input in the layout its
    producer wrote and writes the one its consumer's program reads (attention's, which has no layout knob), so
    neither needs a conversion kernel (MiniLM on WebGL: 62 -> 32 conversions)."""
    from kgen.descriptor.nodes import NodeCache, space
    from kgen.descriptor.webgl import assemble_webgl

    shape, moved = (1, 8, 4, 8), (1, 4, 8, 8)
    values = {n: Value(n, shape) for n in ("x", "s")} | {n: Value(n, moved) for n in ("q", "k", "v", "y")}
    nodes = [
        Node("a", "add", ["x", "x"], "s", {}),
        Node("t", "transpose", ["s"], "q", {"perm": (0, 2, 1, 3)}),
        Node("att", "attention", ["q", "k", "v"], "y", {"scale": 0.5}),
    ]
    constants = {n: np.ones(moved, np.float32) for n in ("k", "v")}
    graph = Graph([values["x"]], ["y"], values, constants, nodes)
    transpose = Workload.create("transpose", [shape], {"perm": (0, 2, 1, 3)})
    config = {**space(transpose, "webgl").default(), "layout_X": "rgba_2x2", "layout_out": "rgba_c", "planes": 4}
    store = RecordStore(tmp_path / "records.jsonl")
    fields = {"median_ms": 1.0, "iqr_ms": 0.0, "samples": 7, "gflops": 1.0, "digest": "", "source": "test"}
    store.add([Record(json.loads(transpose.to_json()), transpose.key, "webgl", "webgl-test", config, **fields)])
    program, *_, nodes_json, _ = assemble_webgl(graph, store, "webgl-test", NodeCache(), 8)
    assert [k["name"].split("_")[0] for k in program["kernels"]] == ["n0", "n1", "n2"]  # no conversion
    assert nodes_json[1]["how"] == "exact" and nodes_json[1]["config"]["planes"] == 1


def test_variants_share_the_programs_that_the_smaller_limit_allows_and_refuse_the_others():
    """A node lowered for 8 render targets serves the 4-target variant only where its config fits 4 planes: the
    shared program is the one a fresh lowering gives, and an 8-plane config is refused under 4, as a fresh
    lowering refuses it."""
    from kgen.codegen.glsl.renderer import render
    from kgen.descriptor.nodes import NodeCache

    values = {"x": Value("x", (1, 16, 8, 8)), "w": Value("w", (16, 16, 1, 1)), "y": Value("y", (1, 16, 8, 8))}
    node = Node("c", "conv2d", ["x", "w"], "y", get_op("conv2d").normalize_attrs({}))
    graph = Graph([values["x"]], ["y"], values, {"w": np.zeros((16, 16, 1, 1), np.float32)}, [node])
    eight, four = {**DEFAULT_LIMITS, "max_draw_buffers": 8}, {**DEFAULT_LIMITS, "max_draw_buffers": 4}
    shared = NodeCache()
    for planes in (1, 8):
        shared.lower(graph, node, "webgl", {"planes": planes}, "c", eight)
    program, config = shared.lower(graph, node, "webgl", {"planes": 1}, "c", four)
    assert shared.hits == 1
    fresh = NodeCache().lower(graph, node, "webgl", {"planes": 1}, "c", four)
    assert (render(program), config) == (render(fresh[0]), fresh[1])
    for cache in (shared, NodeCache()):
        with pytest.raises(KgenError, match="max_draw_buffers"):
            cache.lower(graph, node, "webgl", {"planes": 8}, "c", four)


def test_a_strided_convs_candidates_include_reading_its_input_through_a_compact_copy():
    """The compact copy of a strided conv's input is scratch of the size of that input, more than twice the
    output: it lives only while the node runs, so the seeds that read through it are candidates (without records,
    ResNet-50's three strided 3x3 convs ran 2-3x slower than their records after tuning in the page)."""
    from kgen.descriptor.assemble import lower_nodes
    from kgen.descriptor.nodes import NodeCache

    attrs = get_op("conv2d").normalize_attrs({"pads": (1, 1, 1, 1), "strides": (2, 2)})
    values = {"x": Value("x", (1, 16, 28, 28)), "w": Value("w", (16, 16, 3, 3)), "y": Value("y", (1, 16, 14, 14))}
    node = Node("c", "conv2d", ["x", "w"], "y", attrs)
    graph = Graph([values["x"]], ["y"], values, {"w": np.zeros((16, 16, 3, 3), np.float32)}, [node])
    ((chosen, alts, _),) = lower_nodes(graph, "wasm", Options(None, candidates=6), NodeCache())
    assert chosen.config.get("subsample") == 0
    assert any(c.program.config.get("subsample") == 1 for c in alts)


def test_a_nodes_few_candidates_spread_over_its_templates_seeds():
    """A 1x1 conv's first candidates tile along both of its best axes (the seeds vary the axis last: the first five
    were all along rows, and MobileNet-v2's 1x1 convs on 112x112, best tiled along channels, had no such one), and
    each next one differs from the nearest one before it in as many knobs as any later one does."""
    from kgen.descriptor.assemble import lower_nodes
    from kgen.descriptor.candidates import spread
    from kgen.descriptor.nodes import NodeCache

    values = {"x": Value("x", (1, 16, 56, 56)), "w": Value("w", (32, 16, 1, 1)), "y": Value("y", (1, 32, 56, 56))}
    node = Node("c", "conv2d", ["x", "w"], "y", get_op("conv2d").normalize_attrs({}))
    graph = Graph([values["x"]], ["y"], values, {"w": np.zeros((32, 16, 1, 1), np.float32)}, [node])
    ((_, alts, _),) = lower_nodes(graph, "wasm", Options(None, candidates=5), NodeCache())
    assert {c.program.config["tile_axis"] for c in alts} == {"h", "m"}, [c.program.config for c in alts]
    configs = [{"a": a, "b": b, "c": c} for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    order = list(spread(configs, [configs[0]]))
    assert sorted(map(str, order)) == sorted(map(str, configs)) and order[0] == {"a": 1, "b": 1, "c": 1}
    differ = lambda x, y: sum(x[k] != y[k] for k in x)  # noqa: E731
    for i in range(len(order)):
        nearest = [min(differ(d, t) for t in [configs[0], *order[:i]]) for d in order[i:]]
        assert nearest[0] == max(nearest), (i, order)


@pytest.mark.parametrize(("one_ms", "many_ms", "threads"), [(0.3, 0.4, 1), (0.8, 0.9, 2), (0.5, 0.4, 2)])
def test_a_node_runs_on_one_thread_only_while_the_workers_spin(tmp_path, one_ms, many_ms, threads):
    """A node faster on 1 thread than on 2 runs on one only where its record ends within the workers' spin
    (MobileNet-v2's depthwise convs, re-tuned on 1 thread, were faster alone and made the 2-thread model slower)."""
    from kgen.descriptor.assemble import lower_nodes
    from kgen.descriptor.nodes import NodeCache

    values = {"x": Value("x", (1, 8, 28, 28)), "w": Value("w", (8, 8, 3, 3)), "y": Value("y", (1, 8, 28, 28))}
    attrs = get_op("conv2d").normalize_attrs({"pads": (1, 1, 1, 1)})
    node = Node("c", "conv2d", ["x", "w"], "y", attrs)
    graph = Graph([values["x"]], ["y"], values, {"w": np.zeros((8, 8, 3, 3), np.float32)}, [node])
    workload = Workload.create("conv2d", [(1, 8, 28, 28), (8, 8, 3, 3)], attrs)
    config = {"tile_axis": "m", "tile_a": 4, "tile_b": 8, "unroll": 2, "vector": "f32x4_fma", "pad": 1}
    store = RecordStore(tmp_path / "records.jsonl")
    fingerprint = {"hardwareConcurrency": 2, "wasm": {"maxThreads": 2}}
    for t, ms in ((1, one_ms), (2, many_ms)):
        store.add([Record.measured(workload, "wasm", fingerprint, {**config, "threads": t}, ms, 0.0, 5, "d", "test")])
    ((chosen, _, _),) = lower_nodes(graph, "wasm", Options(store, threads=2), NodeCache())
    assert chosen.choice.how == "exact" and chosen.config["threads"] == threads


def test_a_models_matmul_reads_its_weight_packed_whatever_its_record_says_and_a_conv_as_its_record_says(tmp_path):
    """The tuner times a kernel with its weight in cache, where packing gains nothing; in a model the weight comes
    from beyond the cache and MiniLM's projections ran 10% faster packed. Convolutions keep their records'."""
    from kgen.descriptor.assemble import lower_nodes
    from kgen.descriptor.nodes import NodeCache

    values = {"x": Value("x", (1, 8, 6, 6)), "w": Value("w", (8, 8, 1, 1)), "c": Value("c", (1, 8, 6, 6))}
    values |= {"r": Value("r", (1, 6, 48)), "b": Value("b", (48, 16)), "y": Value("y", (1, 6, 16))}
    conv_attrs = get_op("conv2d").normalize_attrs({})
    nodes = [
        Node("conv", "conv2d", ["x", "w"], "c", conv_attrs),
        Node("view", "reshape", ["c"], "r", {"shape": (1, 6, 48)}),
        Node("mm", "matmul", ["r", "b"], "y", {}),
    ]
    weights = {"w": np.ones((8, 8, 1, 1), np.float32), "b": np.ones((48, 16), np.float32)}
    graph = Graph([values["x"]], ["y"], values, weights, nodes)
    store = RecordStore(tmp_path / "records.jsonl")
    base = {"tile_a": 2, "tile_b": 8, "vector": "f32x4_fma", "threads": 1, "pack": 0}
    conv = Workload.create("conv2d", [(1, 8, 6, 6), (8, 8, 1, 1)], conv_attrs)
    matmul = Workload.create("matmul", [(1, 6, 48), (48, 16)])
    for workload, axis in ((conv, "m"), (matmul, "i1")):
        config = {**base, "tile_axis": axis}
        store.add([Record.measured(workload, "wasm", {"hardwareConcurrency": 2}, config, 1.0, 0.0, 5, "d", "test")])
    programs = {np_.node.name: np_ for np_, _, _ in lower_nodes(graph, "wasm", Options(store), NodeCache())}
    assert programs["conv"].choice.how == "exact" and programs["conv"].config["pack"] == 0
    assert programs["mm"].choice.how == "exact" and programs["mm"].config["pack"] == 1
    assert [k.name for k in programs["mm"].program.prepare] == ["matmul_pack0"]
    assert not any("pack" in k.name for k in programs["conv"].program.prepare)


def test_the_converters_spin_is_the_wasm_workers():
    """The converter's rule reads the workers' spin from the backend; the runtime's worker spins that long."""
    worker = Path(kgen.__file__).parent / "runtime" / "launchers" / "wasm_worker.js"
    (spin,) = re.findall(r"const SPIN_MS = ([0-9.]+);", worker.read_text())
    assert float(spin) == backends.get("wasm").worker_spin_ms


def test_on_webgl_a_depthwise_conv_reads_its_producers_planes_and_a_pointwise_conv_reads_them_converted(tmp_path):
    """A depthwise 3x3 conv reads each value of its image 9 times: it reads the 8 planes that the conv before it
    wrote (a 2D array texture) itself, with no conversion kernel. A 1x1 conv reads each value once per output
    channel (16 here): its image is converted out of the planes first."""
    from kgen.descriptor.nodes import NodeCache, space
    from kgen.descriptor.webgl import assemble_webgl

    x, mid = (1, 8, 8, 8), (1, 16, 8, 8)
    values = {"x": Value("x", x), "a": Value("a", mid), "d": Value("d", mid), "p": Value("p", mid)}
    conv = get_op("conv2d").normalize_attrs
    nodes = [
        Node("pw", "conv2d", ["x", "w1"], "a", conv({})),
        Node("dw", "conv2d", ["a", "w2"], "d", conv({"group": 16, "pads": (1, 1, 1, 1)})),
        Node("pw2", "conv2d", ["a", "w3"], "p", conv({})),
    ]
    rng = np.random.default_rng(0)
    constants = {
        "w1": rng.standard_normal((16, 8, 1, 1)).astype(np.float32),
        "w2": rng.standard_normal((16, 1, 3, 3)).astype(np.float32),
        "w3": rng.standard_normal((16, 16, 1, 1)).astype(np.float32),
    }
    graph = Graph([values["x"]], ["d", "p"], values, constants, nodes)
    producer = Workload.create("conv2d", [x, (16, 8, 1, 1)], {})
    config = {**space(producer, "webgl").default(), "layout_out": "rgba_c", "planes": 8}
    store = RecordStore(tmp_path / "records.jsonl")
    fields = {"median_ms": 1.0, "iqr_ms": 0.0, "samples": 7, "gflops": 1.0, "digest": "", "source": "test"}
    store.add([Record(json.loads(producer.to_json()), producer.key, "webgl", "webgl-test", config, **fields)])
    program, *_ = assemble_webgl(graph, store, "webgl-test", NodeCache(), 8)
    order = [k["name"].split("_")[0] for k in program["kernels"]]
    assert order.index("n1") == order.index("n0") + 1  # the depthwise conv right after its producer
    assert order[order.index("n2") - 1].startswith("c")  # a conversion before the pointwise conv

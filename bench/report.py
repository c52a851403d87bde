"""`kgen report`: a static HTML dashboard of the results store, which works offline (plots are SVG inline, made
with matplotlib; no script, no CDN), with its tables as CSV (and LaTeX with ``--latex``) beside it.

Sections: the latest comparison of each suite (kgen / faster peer per workload and backend, geomeans), the share
of the measured peak, regressions (`bench.history`), the history per commit of every workload and backend,
tuning convergence (best so far against trials: TPE against random search from bench.tuning_efficiency, and every
study of the Optuna storage), the same history in asv's format with the command that builds asv's site from it,
and the optuna-dashboard command for the storage. Every table names the device it was measured on, and software
(SwiftShader) figures say so.
"""

from __future__ import annotations

import html
import io
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import history, store
from bench.kernel_suite import ratio_table
from bench.store import variant_name
from bench.suite import geomean
from kgen.atomic import write_text_atomic

COLORS = {"kgen": "C0", "ort": "C1", "tfjs": "C2"}
EFFICIENCY = Path("results/bench/tuning_efficiency.json")
ROOT = Path(__file__).resolve().parent.parent
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-variant-numeric: tabular-nums; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; } th { background: #f4f4f4; }
td:first-child, th:first-child { text-align: left; }
.caption { color: #555; font-size: 0.9em; margin-bottom: 1.5em; }
.bad { color: #b00; } .good { color: #060; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
code { background: #f4f4f4; padding: 1px 4px; }
"""


def latest_run(rows: Sequence[dict], suite: str) -> list[dict]:
    """The rows of ``suite``'s latest run of each backend variant on each device (a run may cover some backends
    only, e.g. ``kgen bench --backend wasm``)."""
    latest: dict[tuple, tuple[str, str]] = {}
    for r in rows:
        if r["suite"] == suite:
            key = (r["backend"], r["threads"], r["device"])
            latest[key] = max(latest.get(key, ("", "")), (r["time"], r["run"]))
    return [r for r in rows if r["suite"] == suite and latest[(r["backend"], r["threads"], r["device"])][1] == r["run"]]


def device_caption(rows: Sequence[dict]) -> str:
    """The devices rows were measured on, one clause each: device class, browser, cores, host CPU, software label."""
    seen = {}
    for r in rows:
        label = "software (SwiftShader): the GPU figures are CPU figures" if r.get("software") else "hardware"
        seen[(r["device"], r["browser"], r["cores"], r.get("cpu") or "CPU not recorded")] = label
    parts = [f"{d} ({label}), Chromium {b}, {c} cores, {cpu}" for (d, b, c, cpu), label in seen.items()]
    runs = sorted({(r["time"], r["commit"][:10] + (" (dirty)" if r.get("dirty") else "")) for r in rows})
    when = ", ".join(f"kgen {commit} at {time}" for time, commit in runs)
    return "Measured on " + "; ".join(parts) + f". Runs: {when}."


def _svg(fig) -> str:
    """The figure as inline SVG, the same bytes for the same data (fixed ids, no date): a rebuilt report's diff
    shows what changed."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    with plt.rc_context({"svg.hashsalt": "kgen-report"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})

    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _table(header: Sequence[str], body: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><tr>{head}</tr>{rows}</table>"


def _fmt(v: Any, digits: int = 2) -> str:
    return "" if v is None or v != v else f"{v:.{digits}f}"


def comparison(rows: list[dict], out: Path, latex: bool, suite: str) -> str:
    """The latest run's kgen / faster-peer table, its geomeans per backend, and the CSV / LaTeX files."""
    import pandas as pd

    table = ratio_table(rows)
    if not table:
        return ""
    frame = pd.DataFrame(
        [
            {
                "workload": t["workload"],
                "backend": variant_name(t["backend"], t["threads"]),
                "kgen_ms": t["kgen_ms"],
                "kgen_gflops": t.get("kgen_gflops"),
                "best_peer": t["best_peer"],
                "best_peer_ms": t["kgen_ms"] * t["ratio"] if t["ratio"] else None,
                "ratio": t["ratio"],
                "ratio_low": t.get("ratio_low"),
                "ratio_high": t.get("ratio_high"),
                "software": t["software"],
            }
            for t in table
        ]
    )
    frame.to_csv(out / f"{suite}.csv", index=False)
    wide = frame.pivot_table(index="workload", columns="backend", values="ratio", sort=False)
    geo = {b: geomean(frame[frame.backend == b].ratio.dropna()) for b in wide.columns}
    if latex:
        tex = wide.copy()
        tex.loc["geomean"] = [geo[b] for b in wide.columns]
        caption = device_caption(rows).replace("_", r"\_")
        body = tex.to_latex(float_format="%.2f", na_rep="--", caption=f"kgen / faster peer (speed). {caption}")
        (out / f"{suite}.tex").write_text(body)
    header = ["workload", *wide.columns]
    body = []
    for workload in wide.index:
        cells = []
        for b in wide.columns:
            t = next(
                (t for t in table if t["workload"] == workload and variant_name(t["backend"], t["threads"]) == b), None
            )
            if not t or not t["ratio"]:
                cells.append("")
                continue
            spread = (
                f" <small>({_fmt(t.get('ratio_low'))}–{_fmt(t.get('ratio_high'))})</small>"
                if t.get("ratio_low")
                else ""
            )
            cls = "good" if t["ratio"] >= 1 else "bad"
            cells.append(f"<span class={cls}>{t['ratio']:.2f}x</span> {t['best_peer']}{spread}")
        body.append([html.escape(str(workload)), *cells])
    body.append(["<b>geomean</b>", *[f"<b>{geo[b]:.2f}x</b>" for b in wide.columns]])
    files = f'<a href="{suite}.csv">{suite}.csv</a>' + (f', <a href="{suite}.tex">{suite}.tex</a>' if latex else "")
    return (
        f"<h2>Latest {html.escape(suite)} run: kgen / faster peer</h2>"
        "<p>The faster peer's time over kgen's (above 1: kgen is faster), median over the rounds, with the range "
        "the rounds allow.</p>"
        + _table(header, body)
        + f'<div class="caption">{html.escape(device_caption(rows))} Tables: {files}.</div>'
    )


def model_details(rows: list[dict], suite: str) -> str:
    """Per model and side: latency, cold start and peak memory (wasm memory, live GPU buffers, live textures)."""
    if not rows:
        return ""
    body = []
    for r in sorted(rows, key=lambda r: (r["workload"], r["backend"], r["threads"], r["side"])):
        memory = r.get("peak_memory") or {}
        mib = [f"{memory.get(k, 0) / 2**20:.1f}" for k in ("wasmBytes", "gpuBufferPeakBytes", "texturePeakBytes")]
        variant = variant_name(r["backend"], r["threads"])
        body.append(
            [r["workload"], f"{r['side']} {variant}", _fmt(r.get("median_ms")), _fmt(r.get("cold_ms"), 0), *mib]
        )
    header = ["model", "side", "median ms", "cold start ms", "wasm MiB", "GPU buffers MiB", "textures MiB"]
    return (
        f"<h3>{html.escape(suite)}: latency, cold start, peak memory</h3>"
        + _table(header, body)
        + f'<div class="caption">{html.escape(device_caption(rows))}</div>'
    )


def peak_share(kernels: list[dict], peaks: list[dict], out: Path) -> str:
    """kgen's GFLOP/s as a share of the measured ceiling of its backend (wasm: relaxed-SIMD madd at that thread
    count, timed beside each kernel where the kernels run has it (``peak_share``), else the latest peak run's;
    WebGPU and WebGL: the WebGPU vec4 fma loop, on the same adapter)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    if not kernels:
        return ""
    ceiling = {}
    for p in peaks:
        if p["backend"] == "wasm" and p["workload"] == "peak f32x4 madd":
            ceiling[("wasm", int(p["threads"]))] = p["gflops"]
        if p["backend"] == "webgpu":
            ceiling[("webgpu", 1)] = ceiling[("webgl", 1)] = p["gflops"]
    shares: dict[str, list[tuple[str, float]]] = {}
    for r in kernels:
        key = (r["backend"], int(r["threads"] or 1))
        if r["side"] != "kgen" or not r.get("gflops"):
            continue
        share = r.get("peak_share") or (r["gflops"] / ceiling[key] if key in ceiling else None)
        if share:
            shares.setdefault(variant_name(*key), []).append((r["workload"], share))
    if not shares:
        return ""
    table = [
        {"backend": b, "workload": w, "share_of_peak": round(s, 4)} for b, items in shares.items() for w, s in items
    ]
    pd.DataFrame(table).to_csv(out / "peak_share.csv", index=False)  # quoted: workload names hold commas
    fig, ax = plt.subplots(figsize=(10, 3.2))
    names = list(shares)
    for i, b in enumerate(names):
        values = [s for _, s in shares[b]]
        ax.scatter([i] * len(values), values, alpha=0.6)
        ax.hlines(statistics.median(values), i - 0.3, i + 0.3, color="k")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("kgen GFLOP/s / peak")
    ax.set_ylim(0, max(1.0, max(s for items in shares.values() for _, s in items) * 1.1))
    ax.grid(axis="y", alpha=0.3)
    body = [
        [
            b,
            f"{geomean([s for _, s in items]):.0%}",
            f"{statistics.median(s for _, s in items):.0%}",
            f"{min(s for _, s in items):.0%}",
            f"{max(s for _, s in items):.0%}",
        ]
        for b, items in shares.items()
    ]
    peak_rows = [
        [
            p["workload"],
            variant_name(p["backend"], p["threads"]) if p["threads"] else p["backend"],
            f"{p['gflops']:.1f}",
            "software" if p["software"] else "hardware",
        ]
        for p in peaks
    ]
    return (
        "<h2>Share of the measured peak</h2><p>kgen's kernels (latest kernels run) as a share of this machine's "
        "arithmetic ceiling in the browser: for wasm the register-only relaxed-SIMD madd loop at the same thread "
        "count, timed in the same page right after each kernel (the median over rounds of the per-round share; a "
        "run made before that probe existed is set against the latest peak run); for WebGPU and WebGL the WebGPU "
        "vec4 fma loop of the latest peak run (the same adapter).</p>"
        + f"<figure>{_svg(fig)}</figure>"
        + _table(["backend", "geomean share", "median share", "lowest", "highest"], body)
        + _table(["ceiling", "threads / backend", "GFLOP/s", "label"], peak_rows)
        + f'<div class="caption">{html.escape(device_caption(peaks))} Table: <a href="peak_share.csv">'
        "peak_share.csv</a>.</div>"
    )


def history_plots(rows: list[dict]) -> str:
    """Per backend variant, one panel per workload: each side's median time per run (with the rounds' range)."""
    import matplotlib.pyplot as plt

    timed = [r for r in rows if r.get("median_ms") and r["suite"] in ("kernels", "models", "resnet50")]
    runs = sorted({(r["time"], r["run"], r["commit"]) for r in timed})
    order = {run: i for i, (_, run, _) in enumerate(runs)}
    labels = [f"{c[:7]}" for _, _, c in runs]
    parts = []
    variants = sorted({(r["suite"], r["backend"], int(r["threads"] or 1)) for r in timed})
    for suite, backend, threads in variants:
        mine = [r for r in timed if (r["suite"], r["backend"], int(r["threads"] or 1)) == (suite, backend, threads)]
        workloads = list(dict.fromkeys(r["workload"] for r in mine))
        cols = 4
        nrows = (len(workloads) + cols - 1) // cols
        fig, axes = plt.subplots(nrows, cols, figsize=(12, 2.4 * nrows), squeeze=False)
        for ax, workload in zip(axes.flat, workloads, strict=False):
            for side in ("kgen", "ort", "tfjs"):
                pts = sorted((order[r["run"]], r) for r in mine if r["workload"] == workload and r["side"] == side)
                if not pts:
                    continue
                xs = [x for x, _ in pts]
                ys = [r["median_ms"] for _, r in pts]
                lo = [r["median_ms"] - (r.get("low_ms") or r["median_ms"]) for _, r in pts]
                hi = [(r.get("high_ms") or r["median_ms"]) - r["median_ms"] for _, r in pts]
                ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=3, capsize=2, label=side, color=COLORS[side])
            ax.set_title(workload, fontsize=9)
            ax.set_ylabel("ms", fontsize=8)
            ax.set_ylim(bottom=0)
            ticks = sorted({order[r["run"]] for r in mine if r["workload"] == workload})
            ax.set_xticks(ticks, [labels[t] for t in ticks], fontsize=7, rotation=45)
            ax.tick_params(axis="y", labelsize=7)
        for ax in list(axes.flat)[len(workloads) :]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        fig.suptitle(f"{suite}: {variant_name(backend, threads)} (time per run, lower is better)", fontsize=11)
        fig.tight_layout()
        parts.append(f"<figure>{_svg(fig)}</figure>")
    if not parts:
        return ""
    return (
        "<h2>History per commit</h2><p>Each point is one run of <code>kgen bench</code> (median over its rounds; "
        "the bar spans its lowest and highest round), labelled by kgen's commit.</p>" + "".join(parts)
    )


def regressions_section(rows: list[dict]) -> str:
    found = history.regressions(rows)
    intro = (
        "<h2>Regressions</h2><p>asv's step detection on every series (one side of one workload on one backend, "
        f"device and host CPU, over the runs), flagged when a slower level holds for at least {history.MIN_RUNS} "
        f"runs and exceeds the series' run-to-run spread (at least {history.MIN_EFFECT:.0%}).</p>"
    )
    if not found:
        return intro + "<p class=good>No regression found.</p>"
    items = "".join(f"<li class=bad>{html.escape(r.describe())}</li>" for r in found)
    return intro + f"<ul>{items}</ul>"


def convergence(storage: str | None) -> str:
    """Best so far against trials: TPE against random search (bench.tuning_efficiency's runs, medians over seeds,
    relative to the reference best), and each study of the Optuna storage (relative to its own best)."""
    import matplotlib.pyplot as plt

    parts = []
    if EFFICIENCY.exists():
        data = json.loads(EFFICIENCY.read_text())
        with_curves = [r for r in data["rows"] if r.get("curves")]
        if with_curves:
            fig, axes = plt.subplots(1, len(with_curves), figsize=(4 * len(with_curves), 3), squeeze=False)
            for ax, row in zip(axes.flat, with_curves, strict=True):
                best = row["reference_best_ms"]
                for sampler, runs in row["curves"].items():
                    n = min(len(r) for r in runs)
                    med = [statistics.median(best / r[i] if r[i] else 0.0 for r in runs) for i in range(n)]
                    ax.plot(range(1, n + 1), med, label=f"{sampler} (median of {len(runs)})")
                ax.axhline(1 / 1.05, color="grey", ls=":", lw=1)
                ax.set_title(row["workload"], fontsize=9)
                ax.set_xlabel("trial")
                ax.set_ylabel("best so far (share of reference best speed)", fontsize=8)
                ax.set_ylim(0, 1.05)
                ax.legend(fontsize=7)
            fig.tight_layout()
            label = "software (SwiftShader) WebGPU" if data.get("software") else "WebGPU"
            parts.append(
                f"<h3>TPE against random search</h3><figure>{_svg(fig)}</figure>"
                f'<div class="caption">bench.tuning_efficiency on {label}; the dotted line is within 5% of the '
                "reference best.</div>"
            )
    studies = _study_curves(storage) if storage else []
    if studies:
        fig, ax = plt.subplots(figsize=(10, 3.5))
        for name, curve in studies:
            ax.plot(range(1, len(curve) + 1), curve, lw=1, alpha=0.7, label=name[:60])
        ax.set_xlabel("trial")
        ax.set_ylabel("best so far / study's best (speed)")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=6, loc="lower right")
        parts.append(
            f"<h3>Studies of {html.escape(storage)}</h3><figure>{_svg(fig)}</figure>"
            f'<div class="caption">The {len(studies)} studies with the most trials. Browse every study with '
            f"<code>pip install optuna-dashboard; optuna-dashboard {html.escape(storage)}</code>, then open "
            '<a href="http://127.0.0.1:8080/">http://127.0.0.1:8080/</a>.</div>'
        )
    return "<h2>Tuning convergence</h2>" + "".join(parts) if parts else ""


def _study_curves(storage: str, most: int = 8) -> list[tuple[str, list[float]]]:
    import optuna

    from bench.tuning_efficiency import best_so_far
    from kgen.tune.study import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage.startswith("sqlite:///") and not Path(storage[len("sqlite:///") :]).exists():
        print(f"kgen report: no tuning studies: {storage} does not exist", file=sys.stderr)
        return []  # opening it would create an empty database
    try:
        backend = open_storage(storage)
        summaries = optuna.get_all_study_summaries(backend)
    except Exception as err:  # a report without the storage's section, not no report
        print(f"kgen report: warning: no tuning section: {err}", file=sys.stderr)
        return []
    summaries = sorted(summaries, key=lambda s: -s.n_trials)[:most]
    curves = []
    for s in summaries:
        trials = optuna.load_study(study_name=s.study_name, storage=backend).trials
        values = [t.value for t in trials if t.state.name == "COMPLETE" and t.value]
        if len(values) < 3:
            continue
        best = min(values)
        curves.append((s.study_name, [best / v for v in best_so_far(values)]))
    return curves


def asv_site(rows: list[dict], out: Path) -> str:
    """The same history in asv's format (``asv/``), and the command that builds asv's own site from it. The
    report does not build that site: it loads jQuery, flot and bootstrap from CDNs, and the report works offline."""
    conf = history.write_asv(rows, out / "asv", ROOT)
    command = f"python -m asv publish --config {conf.name} && python -m asv preview --config {conf.name}"
    return (
        "<h2>asv</h2><p>The same history in airspeed velocity's format: <code>asv/results/</code> and its "
        f"<code>asv/{conf.name}</code>. Its interactive site is not part of this report, because it loads its "
        "scripts from CDNs; on a machine with network access, build and open it in <code>asv/</code> with "
        f"<code>{html.escape(command)}</code>.</p>"
    )


def benchmarks_markdown(rows: Sequence[dict]) -> str:
    """Every run of the store, newest first: its suite, date, commit and devices, and per workload and backend kgen's
    median, each peer's and kgen / faster peer as a speed ratio (the text of ``results/BENCHMARKS.md``)."""
    by_run: dict[str, list[dict]] = {}
    for r in rows:
        by_run.setdefault(r["run"], []).append(r)
    lines = [
        "# Benchmarks",
        "",
        "Every run of `kgen bench` in `results/bench/history.jsonl`, newest first; written by `kgen report`, not by "
        "hand. Medians over the rounds in ms; ratio: the faster peer's time over kgen's (above 1: kgen is faster). "
        "The protocol is in docs/measurement.md; software rows ran on SwiftShader, so they are CPU figures.",
    ]
    for run, run_rows in sorted(by_run.items(), key=lambda item: item[1][0]["time"], reverse=True):
        first = run_rows[0]
        commit = first["commit"][:10] + (" (dirty)" if first.get("dirty") else "")
        lines += ["", f"## {first['time'][:10]} · {first['suite']} · run `{run}` · kgen {commit}", ""]
        lines += [device_caption(run_rows), ""]
        peaks = [r for r in run_rows if r.get("side") == "peak"]
        table = ratio_table(run_rows)
        peers = sorted({k[: -len("_ms")] for t in table for k in t if k.endswith("_ms") and k != "kgen_ms"})
        if table:
            lines += ["| workload | backend | kgen ms | " + " | ".join(f"{p} ms" for p in peers) + " | ratio |"]
            lines += ["| --- " * (4 + len(peers)) + "|"]
            for t in table:
                variant = variant_name(t["backend"], t["threads"]) + (" (software)" if t["software"] else "")
                cells = [_fmt(t.get(f"{p}_ms")) for p in peers]
                ratio = f"{t['ratio']:.2f}x" if t["ratio"] else ""
                lines.append(f"| {t['workload']} | {variant} | {_fmt(t['kgen_ms'])} | {' | '.join(cells)} | {ratio} |")
        lines += run_summary(table, run_rows)
        for r in peaks:
            variant = variant_name(r["backend"], r["threads"])
            lines.append(f"- peak: {r['workload']} on {variant}: {_fmt(r.get('gflops'), 1)} GFLOP/s")
        for r in run_rows:
            if r.get("kind") == "model" and r.get("peak_share"):
                lines.append(
                    f"- {r['workload']} on {variant_name(r['backend'], r['threads'])}: {r['gflops']:.1f} GFLOP/s, "
                    f"{r['peak_share']:.0%} of the relaxed-SIMD peak timed beside it ({r['peak_share_low']:.0%} to "
                    f"{r['peak_share_high']:.0%} over the rounds; peak {r['peak_gflops']:.1f} GFLOP/s)"
                )
    return "\n".join(lines) + "\n"


def run_summary(table: Sequence[dict], run_rows: Sequence[dict]) -> list[str]:
    """A run's figures that a reader cites: per backend variant over several workloads, the geomean of the
    speed ratios and of kgen's share of the peak timed beside each kernel; per model, kgen's cold start and peak
    memory against each peer's."""
    lines = []
    variants: dict[str, list[dict]] = {}
    for t in table:
        variants.setdefault(variant_name(t["backend"], t["threads"]), []).append(t)
    for variant, entries in variants.items():
        ratios = [t["ratio"] for t in entries if t["ratio"]]
        shares = [
            r["peak_share"]
            for r in run_rows
            if r.get("side") == "kgen"
            and r.get("kind") != "model"
            and r.get("peak_share")
            and variant_name(r["backend"], r["threads"]) == variant
        ]
        if len(ratios) > 1:
            share = f"; {geomean(shares):.0%} of the relaxed-SIMD peak timed beside each kernel" if shares else ""
            lines.append(
                f"- {variant}: {geomean(ratios):.2f}x the faster peer's speed, geomean over {len(ratios)} workloads "
                f"({min(ratios):.2f}x to {max(ratios):.2f}x){share}"
            )
    sides: dict[tuple, dict[str, dict]] = {}
    for r in run_rows:
        if r.get("kind") == "model" and r.get("cold_ms"):
            sides.setdefault((r["workload"], variant_name(r["backend"], r["threads"])), {})[r["side"]] = r
    for (workload, variant), by_side in sides.items():
        kgen = by_side.get("kgen")
        for side, peer in by_side.items():
            if kgen is None or side == "kgen":
                continue
            memory = ""
            if _memory_bytes(kgen) and _memory_bytes(peer):
                memory = (
                    f"; peak memory {_memory_bytes(kgen) / 2**20:.0f} MiB against {_memory_bytes(peer) / 2**20:.0f} "
                    f"({_memory_bytes(kgen) / _memory_bytes(peer):.2f}x)"
                )
            lines.append(
                f"- {workload} on {variant}: cold start {kgen['cold_ms']:.0f} ms against {side}'s "
                f"{peer['cold_ms']:.0f} ({kgen['cold_ms'] / peer['cold_ms']:.2f}x){memory}"
            )
    for r in run_rows:
        if r.get("refused"):
            variant = variant_name(r["backend"], r["threads"])
            lines.append(f"- {r['workload']} on {variant}: {r['side']} cannot run it ({r['refused']})")
    return lines


def _memory_bytes(row: Mapping[str, Any]) -> float:
    """A side's peak memory: its wasm memory, GPU buffers and textures at their peaks (0: not measured)."""
    return sum((row.get("peak_memory") or {}).values())


def build(rows: list[dict], out: Path, storage: str | None, latex: bool) -> None:
    from kgen.errors import KgenError

    if not rows:
        raise KgenError("the results store is empty: run `kgen bench` first")
    sections = []
    for suite in ("kernels", "models", "resnet50", "transformers"):
        sections.append(comparison(latest_run(rows, suite), out, latex, suite))
        if suite != "kernels":
            sections.append(model_details(latest_run(rows, suite), suite))
    sections.append(peak_share(latest_run(rows, "kernels"), latest_run(rows, "peak"), out))
    sections.append(regressions_section(rows))
    sections.append(history_plots(rows))
    sections.append(convergence(storage))
    sections.append(asv_site(rows, out))
    runs = len({r["run"] for r in rows})
    commits = len({r["commit"] for r in rows})
    page = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>kgen benchmarks</title>"
        f"<style>{STYLE}</style></head><body><h1>kgen benchmarks</h1>"
        f"<p>{runs} runs of <code>kgen bench</code> over {commits} commits. Figures follow the fair protocol "
        "(bench/protocol.py): the machine idle before each side, the same warm-up and samples, sides interleaved "
        "over fresh pages, medians over rounds with their spread.</p>" + "".join(sections) + "</body></html>"
    )
    (out / "index.html").write_text(page, encoding="utf-8")


def main(args) -> int:
    """Build the report in a temporary folder beside ``--out`` and move it into place whole, so a failure never
    leaves a half-written report; what else is in ``--out`` (screenshots) is kept."""
    import matplotlib

    matplotlib.use("Agg")
    from kgen.errors import KgenError

    rows = store.rows(args.results)
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".report-", dir=out.parent))
    except OSError as err:
        raise KgenError(f"{out}: cannot write the report there: {err.strerror}") from None
    try:
        build(rows, tmp, args.storage, args.latex)
        out.mkdir(exist_ok=True)
        for item in tmp.iterdir():
            target = out / item.name
            if target.is_dir():
                shutil.rmtree(target)
            item.replace(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.markdown != "none":
        write_text_atomic(Path(args.markdown), benchmarks_markdown(rows))
        print(f"kgen report: {args.markdown}")
    print(f"kgen report: {out / 'index.html'} ({len(rows)} rows)")
    return 0

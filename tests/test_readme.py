"""The README stays a page for users: short, and every figure of its results table one that results/BENCHMARKS.md
(which `kgen report` writes from the results store) holds for the run the row cites, on the date it gives."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BENCHMARKS = ROOT / "results" / "BENCHMARKS.md"
FIGURE = re.compile(r"(\d+(?:\.\d+)?)\s?(ms|x|%)")


def results_rows() -> list[tuple[str, str, str]]:
    """(kgen cell, run id, date) of each row of the README's results table; "the same" is the row above's run."""
    table = README.read_text().split("## Results", 1)[1].split("\n\n")[2]
    rows, run, date = [], "", ""
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cited := re.search(r"`([0-9a-f]{12})`", cells[-1]):
            run, date = cited[1], re.search(r"\d{4}-\d{2}-\d{2}", cells[-1])[0]
        rows.append((cells[1], run, date))
    return rows


def section(run: str) -> str:
    """The part of BENCHMARKS.md about one run, from its heading to the next."""
    text = BENCHMARKS.read_text()
    start = text.index(f"run `{run}`")
    end = text.find("\n## ", start)
    return text[text.rindex("## ", 0, start) : end if end > 0 else None]


def held(value: str, unit: str, text: str) -> bool:
    """Whether ``text`` holds the figure, rounded as the README writes it; a ratio may be written either way up
    (kgen over the peer, or the peer over kgen)."""
    digits = len(value.partition(".")[2])
    want = float(value)
    numbers = [float(n) for n, u in FIGURE.findall(text) if u == unit]
    numbers += [float(n) for n in re.findall(r"\| (\d+(?:\.\d+)?) ", text)] if unit == "ms" else []
    slack = 0.5 * 10**-digits + 0.005  # the README's rounding, and BENCHMARKS.md's of two decimals
    if unit == "x":
        return any(abs(n - want) <= slack or abs(1 / n - want) <= 0.01 for n in numbers if n)
    return any(abs(n - want) <= slack for n in numbers)


def test_the_readme_is_short():
    assert len(README.read_text().splitlines()) <= 250


def test_every_figure_of_the_results_table_is_in_benchmarks_md_for_the_run_it_cites():
    rows = results_rows()
    assert len(rows) >= 5
    for cell, run, date in rows:
        assert run, cell
        text = section(run)
        assert text.startswith(f"## {date}"), (run, date)
        figures = FIGURE.findall(cell)
        assert figures, cell
        for value, unit in figures:
            assert held(value, unit, text), f"{value}{unit} of {cell!r} is not in run {run} of BENCHMARKS.md"

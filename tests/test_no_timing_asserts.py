"""No test passes or fails on wall-clock time (issue 12, defect 2): a loaded machine is slow,
not broken. Timing belongs in benchmarks/ (benchmarks/speed.py, benchmarks/batch_jobs.py)."""

import ast
from pathlib import Path

TIMING = {"seconds", "elapsed", "wall", "wall_s", "duration", "perf_counter", "monotonic", "time", "process_time"}


def _names(node: ast.AST) -> set[str]:
    found = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            found.add(n.id)
        elif isinstance(n, ast.Attribute):
            found.add(n.attr)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            found.add(n.value)
    return found


def timing_asserts(source: str) -> list[int]:
    """Lines of asserts that order-compare something named like a time."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Assert):
            continue
        for cmp in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
            if any(isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) for op in cmp.ops) and _names(cmp) & TIMING:
                lines.append(node.lineno)
                break
    return lines


def test_the_detector_catches_the_old_bench_assert():
    assert timing_asserts('assert summary["seconds"] < 120') == [1]
    assert timing_asserts("t0 = time.perf_counter()\nassert time.perf_counter() - t0 <= 5") == [2]
    assert timing_asserts('assert rows["psnr"] > 20 and x == 1') == []


def test_no_test_asserts_on_wall_clock_time():
    found = {p.name: timing_asserts(p.read_text()) for p in sorted(Path(__file__).parent.glob("test_*.py"))
             if p.name != Path(__file__).name}
    assert {name: lines for name, lines in found.items() if lines} == {}

"""tools/benchmark.py: the README block round-trips, and --only replaces just the re-measured sections."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("benchmark_tool", os.path.join(ROOT, "tools", "benchmark.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

SECTIONS = [("Degradation throughput (GT 256)", "2026-11-20", "| a | b |\n|---|---|\n| 1 | 2 |"),
            ("Training step, Paddle vs PyTorch", "2026-11-21", "Text line\n\n| x |\n|---|\n| 3 |")]


def test_block_round_trips():
    text = "# Title\n\n" + bench.render(SECTIONS) + "\n\nafter\n"
    assert bench.parse_block(text) == SECTIONS
    assert bench.parse_block("no block here") == []


def test_sections_of_a_block_that_named_its_machine_once_keep_that_machine():
    old = (f"{bench.START}\nMeasured on Intel Xeon, 2 logical cores with `python tools/benchmark.py`; each heading "
           f"gives its date.\n\n#### Inference engines — 2026-11-25\n\n| e |\n\n{bench.END}")
    (section,) = bench.parse_block(old)
    assert section == ("Inference engines", "2026-11-25, Intel Xeon, 2 logical cores", "| e |")
    assert bench.parse_block(bench.render([section])) == [section]


def test_only_replaces_the_named_sections_and_keeps_order():
    fresh = [("Training step, Paddle vs PyTorch", "2026-11-25", "| y |"), ("New measure", "2026-11-25", "| z |")]
    merged = bench.merge(SECTIONS, fresh)
    assert merged == [SECTIONS[0], fresh[0], fresh[1]]


def test_block_of_the_older_layout_takes_its_header_date():
    old = (f"{bench.START}\nMeasured 2026-11-19 on some CPU with `python tools/benchmark.py`.\n\n"
           f"#### Inference engines\n\n| e |\n\n{bench.END}")
    assert bench.parse_block(old) == [("Inference engines", "2026-11-19", "| e |")]


def test_only_choices_are_the_benchmark_scripts():
    assert {bench.script_name(cmd) for _, cmd in bench.FULL} == {
        "degradation_speed", "train_step", "trainer_overhead", "inference", "peak_rss", "config_memory", "onnx_quant"}
    assert all(os.path.exists(os.path.join(ROOT, cmd[0])) for _, cmd in bench.FULL)

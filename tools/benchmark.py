"""Run every speed measure of the project in one go and write the results into README.md.

    python tools/benchmark.py            # all benchmarks, README table updated
    python tools/benchmark.py --quick    # fewer repeats and smaller nets, for a smoke run
    python tools/benchmark.py --no-write # print only
    python tools/benchmark.py --only train_step   # re-measure one section, keep the others

Each measure is a script in benchmarks/ run as a child process (Paddle's threading and oneDNN flags must be set
before paddle is imported, so engines cannot share a process). Results are quoted as ratios measured side by side
in the same run; absolute times come with the machine they were taken on.
"""
import argparse
import datetime
import os
import platform
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START, END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"

FULL = [
    ("Degradation throughput (Real-ESRGAN defaults, GT 256)", ["benchmarks/degradation_speed.py", "--items", "200"]),
    ("Training step, Paddle vs PyTorch", ["benchmarks/train_step.py", "--nb", "6", "23", "--steps", "4",
                                          "--rounds", "2"]),
    ("Trainer overhead over a bare step (PyTorch)", ["benchmarks/trainer_overhead.py", "--nb", "6", "--iters", "6",
                                                     "--rounds", "2"]),
    ("Inference engines", ["benchmarks/inference.py"]),
    ("Low precision on real weights (anime 6B): bf16 and int8 against fp32", ["benchmarks/onnx_quant.py"]),
    ("Training memory with data workers", ["benchmarks/peak_rss.py", "--nb", "6", "--iters", "6"]),
    ("Training memory of the full Real-ESRNet config", ["benchmarks/config_memory.py", "--config",
                                                        "realesrnet_x4plus", "--batch", "2", "4"]),
]
QUICK = [
    ("Degradation throughput (Real-ESRGAN defaults, GT 256)", ["benchmarks/degradation_speed.py", "--items", "30"]),
    ("Training step, Paddle vs PyTorch", ["benchmarks/train_step.py", "--nb", "2", "--steps", "2", "--rounds", "1"]),
    ("Trainer overhead over a bare step (PyTorch)", ["benchmarks/trainer_overhead.py", "--nb", "2", "--iters", "3",
                                                     "--rounds", "1"]),
    ("Inference engines", ["benchmarks/inference.py", "--quick"]),
    ("Low precision on real weights (anime 6B): bf16 and int8 against fp32", ["benchmarks/onnx_quant.py", "--runs", "1"]),
    ("Training memory with data workers", ["benchmarks/peak_rss.py", "--nb", "2", "--iters", "3"]),
    ("Training memory of the full Real-ESRNet config", ["benchmarks/config_memory.py", "--config",
                                                        "realesrnet_x4plus", "--batch", "1", "2", "--iters", "1"]),
]


def script_name(cmd):
    return os.path.splitext(os.path.basename(cmd[0]))[0]


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    from common_data.config.precision import cpu_bf16_feature  # the ratios depend on it (README, precision)
    bf16 = cpu_bf16_feature() or "no bf16 instructions"
    return f"{cpu} ({bf16}), {os.cpu_count()} logical cores, Python {platform.python_version()}"


def run(title, cmd):
    script = os.path.join(ROOT, cmd[0])
    if not os.path.exists(script):
        return f"_{cmd[0]} not found_"
    proc = subprocess.run([sys.executable, script, *cmd[1:]], cwd=ROOT, capture_output=True, text=True)
    keep = [ln for ln in proc.stdout.splitlines() if ln.startswith("|") or (ln and not ln[0].isspace()
                                                                            and ln[0].isupper())]
    if proc.returncode:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        keep.append(f"_failed (exit {proc.returncode}): {tail}_")
    lines = []
    for ln in keep:  # Markdown needs a blank line between a text line and the table after it
        if lines and ln.startswith("|") and not lines[-1].startswith("|"):
            lines.append("")
        lines.append(ln)
    return "\n".join(lines)


def render(sections):
    """The README block: one '#### title — date, machine' heading and table per section, in the order given."""
    out = [START, "Measured with `python tools/benchmark.py`; each heading gives the date and the machine of its run.",
           ""]
    for title, stamp, body in sections:
        out += [f"#### {title} — {stamp}", "", body, ""]
    out.append(END)
    return "\n".join(out)


def parse_block(text):
    """Sections [(title, date, body)] of the README block in ``text`` (none when it has no block)."""
    match = re.search(re.escape(START) + "(.*?)" + re.escape(END), text, flags=re.S)
    if not match:
        return []
    block_date = re.search(r"^Measured (\d{4}-\d{2}-\d{2})", match.group(1).strip(), flags=re.M)  # older layouts
    block_machine = re.search(r"^Measured on (.+?) with `", match.group(1).strip(), flags=re.M)
    default = block_date.group(1) if block_date else "date unknown"
    parts = re.split(r"^#### (.+?)(?: — (\d{4}-\d{2}-\d{2}(?:, .+)?))?$", match.group(1), flags=re.M)
    sections = []
    for title, stamp, body in zip(parts[1::3], parts[2::3], parts[3::3]):
        stamp = stamp or default
        if block_machine and ", " not in stamp:  # the machine named once in the header of an older block
            stamp = f"{stamp}, {block_machine.group(1)}"
        sections.append((title, stamp, body.strip()))
    return sections


def merge(old, new):
    """``old`` sections with those of the same title replaced by ``new`` ones, unknown titles appended."""
    fresh = {title: (title, stamp, body) for title, stamp, body in new}
    merged = [fresh.pop(title, (title, stamp, body)) for title, stamp, body in old]
    return merged + [sec for sec in new if sec[0] in fresh]


def readme_text():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def write_readme(block):
    path = os.path.join(ROOT, "README.md")
    text = readme_text()
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n## Benchmarks\n\n" + block + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller nets and fewer repeats")
    ap.add_argument("--no-write", action="store_true", help="print the table, leave README.md alone")
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=[script_name(c) for _, c in FULL],
                    help="run these benchmarks (script names: %(choices)s) and replace only their README sections")
    args = ap.parse_args(argv)
    plan = [(t, c) for t, c in (QUICK if args.quick else FULL) if not args.only or script_name(c) in args.only]
    today = f"{datetime.date.today().isoformat()}, {machine()}"
    sections = []
    for title, cmd in plan:
        print(f"running {' '.join(cmd)} ...", file=sys.stderr, flush=True)
        sections.append((title, today, run(title, cmd)))
    if args.only:
        sections = merge(parse_block(readme_text()), sections)
    block = render(sections)
    print(block)
    if not args.no_write:
        write_readme(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())

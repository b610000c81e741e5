"""Every command the README shows parses with the flags it is shown with, names configs and pretrained models that
exist, and the README's first screen keeps exactly its two set-up commands."""
import importlib
import os
import re
import shlex

import pytest

from esrgan_twin.cli import COMMANDS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
TOOLS = {"main": "train", "convert_weights": "convert", "export_onnx": "export_onnx", "export_model": "export_paddle",
         "infer": "infer", "interpolate": "interpolate", "parity": "parity", "prepare_data": "prepare",
         "make_demo_data": "demo_data"}


def _bash_block_commands():
    """(README offset, line, words) of every ``python tools/X.py`` / ``esrgan-twin SUB`` command in the bash blocks."""
    for block in re.finditer(r"```bash\n(.*?)```", README, re.S):
        for n, line in enumerate(block.group(1).replace("\\\n", " ").splitlines()):
            for segment in " ".join(shlex.split(line, comments=True)).split(" && "):
                words = shlex.split(segment)
                if len(words) >= 2 and words[0] == "python" and words[1].startswith("tools/"):
                    yield (block.start(1), n), line, words
                elif words and words[0] == "esrgan-twin" and len(words) > 1 and not words[1].startswith("-"):
                    if COMMANDS[words[1]][0]:
                        yield (block.start(1), n), line, words


def readme_commands():
    """(line, module, argv) of every ``python tools/X.py`` / ``esrgan-twin SUB`` command in the README's bash blocks."""
    return [(line, TOOLS[os.path.basename(words[1])[:-3]] if words[0] == "python" else COMMANDS[words[1]][0],
             words[2:]) for _, line, words in _bash_block_commands()]


# an inline code span of the README's prose is a command when it starts with one of these
INLINE_LAUNCHERS = ("python tools/", "python -m paddle.distributed.launch ", "torchrun ", "esrgan-twin")


def readme_inline_commands():
    """(README offset, span, words) of every inline code span in the README's prose (outside fenced blocks) that starts
    with one of INLINE_LAUNCHERS; a span broken over lines is joined with one space."""
    prose = re.sub(r"```.*?```", lambda m: re.sub(r"[^\n]", " ", m.group(0)), README, flags=re.S)  # same offsets
    for m in re.finditer(r"`([^`]+)`", prose):
        span = " ".join(m.group(1).split())
        if span.startswith(INLINE_LAUNCHERS):
            yield (m.start(1), 0), span, shlex.split(span)


def readme_commands_in_order():
    """(README line number, text, words) of every command the README shows, bash blocks' (as readme_commands finds
    them, the launcher's words included) and prose's (readme_inline_commands), in README order."""
    found = sorted(list(_bash_block_commands()) + list(readme_inline_commands()), key=lambda c: c[0])
    return [(README.count("\n", 0, where[0]) + 1 + where[1], text, words) for where, text, words in found]


COMMAND_LINES = readme_commands()


def parse(module_name, argv):
    module = importlib.import_module(f"esrgan_twin.commands.{module_name}")
    if hasattr(module, "parse_args"):
        return module.parse_args(argv)
    return module.build_parser().parse_args(argv)


def test_the_readme_shows_the_commands_of_every_tool():
    assert {module for _, module, _ in COMMAND_LINES} >= {"train", "convert", "export_onnx", "export_paddle", "infer",
                                                          "interpolate", "parity", "prepare"}


@pytest.mark.parametrize("line,module,argv", COMMAND_LINES, ids=[f"{m}-{i}" for i, (_, m, _) in
                                                                  enumerate(COMMAND_LINES)])
def test_each_readme_command_parses_and_names_what_exists(line, module, argv):
    try:
        args = parse(module, argv)
    except SystemExit as e:
        pytest.fail(f"the README's `{line.strip()}` does not parse (exit {e.code})")
    config = getattr(args, "config_file", None)
    if config and config != "CFG":
        from esrgan_twin.shipped_configs import resolve_config
        assert os.path.isfile(os.path.join(ROOT, config)) or resolve_config(config), line
    if module in ("infer", "parity") and getattr(args, "model", None) and "." not in args.model:
        from common_data.weights import ncnn_reader
        assert ncnn_reader.resolve_pretrained(args.model) is not None, line


def test_the_first_screen_has_exactly_two_set_up_commands_and_the_second_is_ci_s():
    first = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    commands = [line for line in first.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(commands) == 2 and all(len(c) < 160 for c in commands), commands
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    assert commands[1].replace("pip install --no-deps", "pip install -q --no-deps").replace(
        'pip install -e', 'pip install -q -e').replace("pytest tests", "pytest tests -p no:cacheprovider -ra") in ci

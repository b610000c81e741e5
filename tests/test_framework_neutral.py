"""common_data/ is framework-neutral: no module imports paddle or torch, statically or at import time."""
import ast
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "common_data"
FRAMEWORKS = {"paddle", "torch", "torchvision", "paddle2onnx", "ppgan", "basicsr"}


def framework_imports(source):
    """Top-level names of framework packages imported by ``source`` (import statements and import_module calls)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        else:
            continue
        found |= {n.split(".")[0] for n in names} & FRAMEWORKS
    return found


def module_names():
    """Dotted names of every module under common_data/, sub-packages included."""
    names = (".".join(p.relative_to(PACKAGE).with_suffix("").parts) for p in PACKAGE.rglob("*.py"))
    return sorted(n.removesuffix(".__init__") for n in names if n != "__init__")


def test_detector_finds_each_kind_of_framework_import():
    assert framework_imports("import paddle.nn as nn") == {"paddle"}
    assert framework_imports("from torch import nn") == {"torch"}
    assert framework_imports("def f():\n    import importlib\n    return importlib.import_module('torch')") == {"torch"}
    assert framework_imports("import numpy, cv2\nfrom .registry import Registry") == set()


def test_no_common_data_module_imports_a_framework():
    offenders = {str(p.relative_to(PACKAGE)): sorted(framework_imports(p.read_text(encoding="utf-8"))) for p in PACKAGE.rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_every_common_data_module_loads_neither_paddle_nor_torch():
    names = module_names()
    assert {"data.transforms", "data.datasets", "training.trainer", "metrics.quality", "weights.files"} <= set(names)
    code = ("import importlib, json, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module('common_data.' + name)\n"
            "from common_data.data.datasets import _register_datasets\n"
            "_register_datasets()\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('paddle', 'torch'))))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []

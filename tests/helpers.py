"""Config builders shared by the tests: PaddleGAN's paired (lq, gt) ``preprocess`` list and its augment ops;
``tmpfs``, a real small or read-only file system for fault tests.

Every call builds new dicts and lists (augment ops passed in are used as given), so a test may edit what it gets.
"""
import contextlib
import os
import subprocess

import pytest

from common_data.training.gan_forms import relativistic_d_fake, relativistic_d_real


def paired_op(name, **params):
    """One Transforms op applied to the (lq, gt) pair, e.g. ``paired_op("PairedRandomHorizontalFlip")``."""
    return {"name": name, **params, "keys": ["image", "image"]}


def paired_crop(gt_patch_size, scale=4):
    """PaddleGAN's paired random crop: a ``gt_patch_size`` GT patch and the matching LQ patch."""
    return paired_op("SRPairedRandomCrop", gt_patch_size=gt_patch_size, scale=scale)


def paired_preprocess(*augment):
    """Load lq and gt, run the ``augment`` ops on the pair, then Transpose to CHW and Normalize to [0, 1]."""
    return [{"name": "LoadImageFromFile", "key": "lq"}, {"name": "LoadImageFromFile", "key": "gt"},
            {"name": "Transforms", "input_keys": ["lq", "gt"], "pipeline": [
                *augment,
                paired_op("Transpose"),
                paired_op("Normalize", mean=[0., 0., 0.], std=[255., 255., 255.])]}]


@contextlib.contextmanager
def tmpfs(folder, options):
    """A real tmpfs mounted on ``folder`` with mount ``options`` (``size=512k``, ``ro``); skips the test where
    mounting is not allowed (not root)."""
    os.makedirs(folder, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield str(folder)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def relativistic_d_pair(gan, real_pred, fake_pred):
    """(l_d_real, l_d_fake) of the discriminator's two halves from one pair of predictions."""
    return relativistic_d_real(gan, real_pred, fake_pred), relativistic_d_fake(gan, fake_pred, real_pred)

"""The weights files we write load in spandrel (chaiNNer's model loader, issue 16) as the architecture and the
hyper-parameters we wrote, and spandrel's net gives our torch net's output: spandrel is the independent oracle.

spandrel imports ``torchvision.transforms.functional`` (``InterpolationMode``, ``rotate``, ``normalize``) for two
architectures we do not use (LaMa, RestoreFormer). PyPI's torchvision is a CUDA build that breaks beside our CPU
torch, so it is not a dependency: a stub with those three names (calling one raises) stands in while spandrel is
imported and is taken out of ``sys.modules`` right after, so no other test sees it.

What spandrel 0.4.2 reads and what it does not (said in README §4):
- RRDBNet (its "ESRGAN" arch): BasicSR (``params_ema``) and PaddleGAN names, x4 / x2 / x1 (x2 / x1 are told from
  conv_first's input channels, 4x / 16x conv_last's outputs: pixel-unshuffle), any nf and nb, but only gc = 32
  (spandrel builds its dense blocks with gc=32 whatever the file holds).
- SRVGGNetCompact (its "Compact" arch) with PReLU only: ReLU / LeakyReLU files have no ``body.1.weight``, which
  spandrel needs to recognise the arch.
- Our trainer's ``iter_N_weight.pth`` loads when it holds one net (``{'generator': ...}``, a PSNR run); a GAN run's
  file holds the generator and the discriminator, which spandrel refuses: ``convert_weights.py`` makes it a
  BasicSR ``params_ema`` file.
- No discriminator: spandrel has neither VGG128 nor U-Net SN, and refuses both.
"""
import enum
import os
import sys
import types

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

torch = pytest.importorskip("torch")

from esrgan_twin.commands import convert as cw
from common_data.weights import naming as W

TORCHVISION_STUB = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")


def _import_spandrel():
    """spandrel, imported with a torchvision stub that leaves ``sys.modules`` as it found it."""
    def unavailable(*_, **__):
        raise RuntimeError("torchvision stub (tests/test_spandrel.py): torchvision is not installed")

    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = enum.Enum("InterpolationMode", "NEAREST BILINEAR BICUBIC")
    functional.rotate = functional.normalize = unavailable
    modules = {"torchvision": types.ModuleType("torchvision"),
               "torchvision.transforms": types.ModuleType("torchvision.transforms"),
               "torchvision.transforms.functional": functional}
    modules["torchvision"].transforms = modules["torchvision.transforms"]
    modules["torchvision.transforms"].functional = functional
    saved = {name: sys.modules.get(name) for name in TORCHVISION_STUB}
    sys.modules.update(modules)
    try:
        import spandrel
    except ImportError:
        spandrel = None
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return spandrel


spandrel = _import_spandrel()
pytestmark = pytest.mark.skipif(spandrel is None, reason="pip install --no-deps spandrel einops")

TOL = 1e-5


def rrdbnet(scale=4, nf=16, nb=2, gc=32, seed=0):
    """A Canonical of random RRDBNet weights (small enough that the output is not saturated)."""
    hp = dict(in_nc=3, out_nc=3, nf=nf, nb=nb, gc=gc, scale=scale)
    rng = np.random.default_rng(seed)
    state = {k: (rng.standard_normal(s) * 0.05).astype(np.float32)
             for k, s in W.expected_shapes(W.GENERATOR, hp).items()}
    return W.Canonical(W.GENERATOR, "basicsr", state, hp)


def compact(upscale=4, num_feat=8, num_conv=3, seed=0):
    """A Canonical of random SRVGGNetCompact weights, PReLU slopes random too."""
    hp = dict(num_in_ch=3, num_out_ch=3, num_feat=num_feat, num_conv=num_conv, upscale=upscale, act_type="prelu")
    rng = np.random.default_rng(seed)
    state = {k: (rng.standard_normal(s) * 0.2).astype(np.float32) for k, s in W.expected_shapes(W.COMPACT, hp).items()}
    return W.Canonical(W.COMPACT, "realesrgan", state, hp)


def load(path):
    return spandrel.ModelLoader().load_from_file(str(path))


def assert_same_output(descriptor, canonical, size=12):
    """spandrel's net and ours (convert_weights.build_model) agree on a random input of ``size``² pixels."""
    x = np.random.default_rng(1).random((1, 3, size, size), dtype=np.float32)
    ours = cw.forward_fn(cw.build_model(canonical, "torch"), "torch")(x)
    with torch.inference_mode():
        theirs = descriptor.model.eval()(torch.from_numpy(x)).numpy()
    side = size * W.net_scale(canonical.hparams)
    assert theirs.shape == ours.shape == (1, 3, side, side)
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=TOL)


def assert_rrdbnet(descriptor, canonical):
    hp = canonical.hparams
    unshuffle = W.unshuffle_multiple(hp)
    assert descriptor.architecture.id == "ESRGAN"
    assert (descriptor.scale, descriptor.input_channels, descriptor.output_channels) == (hp["scale"], 3, 3)
    theirs = descriptor.model.hyperparameters
    assert (theirs["num_filters"], theirs["num_blocks"]) == (hp["nf"], hp["nb"])
    assert theirs["shuffle_factor"] == (unshuffle if unshuffle > 1 else None)
    assert_same_output(descriptor, canonical)


# ------------------------------------------------------------------------------------------------------ RRDBNet
@pytest.mark.parametrize("scale", [4, 2, 1])
def test_rrdbnet_pth_loads_as_esrgan_with_our_sizes_and_output(tmp_path, scale):
    canon = rrdbnet(scale)
    cw.save_weights(canon, "torch", tmp_path / "g.pth")  # BasicSR layout: {'params_ema': state}
    assert_rrdbnet(load(tmp_path / "g.pth"), canon)


def test_rrdbnet_safetensors_loads_as_esrgan(tmp_path):
    canon = rrdbnet(4, nf=8, nb=1)
    cw.save_weights(canon, "torch", tmp_path / "g.safetensors")
    assert_rrdbnet(load(tmp_path / "g.safetensors"), canon)


def test_rrdbnet_in_paddlegan_names_loads_as_esrgan(tmp_path):
    canon = rrdbnet(4)
    cw.save_weights(canon, "torch", tmp_path / "g.pth", naming="ppgan")
    assert_rrdbnet(load(tmp_path / "g.pth"), canon)


def test_spandrel_builds_gc_32_only_so_other_growth_channels_are_refused(tmp_path):
    """A limit of spandrel, pinned so that the README's "gc = 32 only" is noticed when spandrel lifts it."""
    cw.save_weights(rrdbnet(4, gc=8), "torch", tmp_path / "g.pth")
    with pytest.raises(RuntimeError, match="size mismatch"):
        load(tmp_path / "g.pth")


# ------------------------------------------------------------------------------------------------ our trainers
def test_psnr_trainers_weight_file_loads_as_it_is(tmp_path):
    from torch_impl.engine import checkpoint
    canon = rrdbnet(4)
    net = cw.build_model(canon, "torch")
    checkpoint.save_weights(tmp_path / "iter_10_weight.pth", {"generator": net.state_dict()})
    assert_rrdbnet(load(tmp_path / "iter_10_weight.pth"), canon)


def test_gan_trainers_weight_file_loads_after_convert_weights(tmp_path):
    """{generator, discriminator}: spandrel cannot tell which net to load; convert_weights.py writes the generator
    as a BasicSR params_ema file, which it loads."""
    from torch_impl.engine import checkpoint
    canon = rrdbnet(4)
    disc = W.Canonical(W.UNET_DISCRIMINATOR, "basicsr",
                       {k: np.zeros(s, np.float32) for k, s in W.expected_shapes(
                           W.UNET_DISCRIMINATOR, dict(num_in_ch=3, num_feat=4)).items()},
                       dict(num_in_ch=3, num_feat=4))
    weights = tmp_path / "iter_10_weight.pth"
    checkpoint.save_weights(weights, {"generator": cw.build_model(canon, "torch").state_dict(),
                                      "discriminator": cw.build_model(disc, "torch").state_dict()})
    with pytest.raises(spandrel.UnsupportedModelError):
        load(weights)
    assert cw.main([str(weights), str(tmp_path / "g.pth")]) == 0
    assert_rrdbnet(load(tmp_path / "g.pth"), canon)


# ---------------------------------------------------------------------------------------------- SRVGGNetCompact
@pytest.mark.parametrize("upscale", [4, 2])
def test_compact_pth_loads_as_compact_with_our_sizes_and_output(tmp_path, upscale):
    canon = compact(upscale)
    cw.save_weights(canon, "torch", tmp_path / "c.pth")
    descriptor = load(tmp_path / "c.pth")
    assert descriptor.architecture.id == "Compact"
    assert (descriptor.scale, descriptor.input_channels, descriptor.output_channels) == (upscale, 3, 3)
    theirs = descriptor.model.hyperparameters
    assert {k: theirs[k] for k in canon.hparams} == canon.hparams
    assert_same_output(descriptor, canon)


def test_spandrel_knows_compact_nets_by_their_prelu_so_relu_ones_are_refused(tmp_path):
    """A limit of spandrel (its Compact arch is detected by body.1.weight, a PReLU's slopes), pinned for the README."""
    canon = compact(4)
    canon.hparams["act_type"] = "relu"
    canon.state = {k: v for k, v in canon.state.items() if k in W.expected_shapes(W.COMPACT, canon.hparams)}
    cw.save_weights(canon, "torch", tmp_path / "c.pth")
    with pytest.raises(spandrel.UnsupportedModelError):
        load(tmp_path / "c.pth")


# ------------------------------------------------------------------------------------------------------- paddle
@pytest.mark.parametrize("make", [lambda: rrdbnet(2), lambda: compact(4)], ids=["rrdbnet_x2", "compact_x4"])
def test_paddle_weights_converted_to_torch_load_in_spandrel(tmp_path, make):
    pytest.importorskip("paddle")
    canon = make()
    cw.save_weights(canon, "paddle", tmp_path / "g.pdparams")  # PaddleGAN layout: {'generator': state}
    assert cw.main(["--to", "torch", str(tmp_path / "g.pdparams"), str(tmp_path / "g.pth")]) == 0
    descriptor = load(tmp_path / "g.pth")
    assert descriptor.architecture.id == ("ESRGAN" if canon.arch == W.GENERATOR else "Compact")
    assert descriptor.scale == W.net_scale(canon.hparams)
    assert_same_output(descriptor, canon)


# ----------------------------------------------------------------------------------------------- discriminators
@pytest.mark.parametrize("arch,hp", [(W.VGG_DISCRIMINATOR, dict(in_channels=3, num_feat=4, input_size=128)),
                                     (W.UNET_DISCRIMINATOR, dict(num_in_ch=3, num_feat=4))])
def test_spandrel_has_no_discriminator_archs(tmp_path, arch, hp):
    state = {k: np.zeros(s, np.float32) for k, s in W.expected_shapes(arch, hp).items()}
    cw.save_weights(W.Canonical(arch, "basicsr", state, hp), "torch", tmp_path / "d.pth")
    with pytest.raises(spandrel.UnsupportedModelError):
        load(tmp_path / "d.pth")

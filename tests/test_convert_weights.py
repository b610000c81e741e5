"""tools/convert_weights.py and common_data/weights/naming.py: naming generations, unwrapping, shapes, both frameworks."""
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from esrgan_twin.commands import convert as cw
from common_data.weights import files as WF
from common_data.weights import naming as W
from common_data.errors import UserError

torch = pytest.importorskip("torch")
paddle = pytest.importorskip("paddle")
from torch import nn

TINY = dict(in_nc=3, out_nc=3, nf=8, nb=2, gc=4, scale=4)


def random_state(hparams, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) * 0.1
            for k, s in W.expected_shapes(W.GENERATOR, hparams).items()}


def torch_rrdbnet(seed=0, **hp):
    from torch_impl.archs import build_arch
    torch.manual_seed(seed)
    return build_arch({"name": "RRDBNet", **{**TINY, **hp}}).eval()


def torch_out(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def rand_input(shape, seed=1):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


# ------------------------------------------------------------------------------------------ numpy naming logic
@pytest.mark.parametrize("naming", W.GENERATOR_NAMINGS)
def test_every_naming_round_trips_to_the_same_canonical_state(naming):
    canon = W.Canonical(W.GENERATOR, "basicsr", random_state(TINY), dict(TINY))
    renamed = W.to_framework(canon, "torch", naming)
    back = W.canonicalize(renamed, "torch")
    assert back.naming == naming and back.hparams == TINY
    assert set(back.state) == set(canon.state)
    assert all(np.array_equal(back.state[k], canon.state[k]) for k in canon.state)


def test_ppgan_and_esrgan2018_names_for_a_two_block_net():
    canon = W.Canonical(W.GENERATOR, "basicsr", random_state(TINY), dict(TINY))
    ppgan = set(W.to_framework(canon, "paddle"))
    old = set(W.to_framework(canon, "torch", "esrgan2018"))
    assert {"RRDB_trunk.1.RDB3.conv5.bias", "trunk_conv.weight", "upconv2.weight", "HRconv.bias"} <= ppgan
    assert {"model.0.weight", "model.1.sub.1.RDB3.conv5.0.bias", "model.1.sub.2.weight", "model.3.weight",
            "model.6.weight", "model.8.weight", "model.10.bias"} <= old
    assert len(ppgan) == len(old) == 2 * (1 + 2 * 15 + 5)


@pytest.mark.parametrize("scale,first_in", [(4, 3), (2, 12), (1, 48)])
def test_scale_is_read_from_pixel_unshuffled_conv_first(scale, first_in):
    hp = {**TINY, "scale": scale, "gc": 12}
    state = random_state(hp)
    assert state["conv_first.weight"].shape[1] == first_in
    assert W.canonicalize(state, "torch").hparams == hp


def test_params_ema_is_preferred_then_key_selects_params():
    ema, plain = {"a.weight": np.zeros(1)}, {"b.weight": np.ones(1)}
    assert W.unwrap_state_dict({"params": plain, "params_ema": ema})[0] == ema
    assert W.unwrap_state_dict({"params": plain, "params_ema": ema}, key="params")[0] == plain
    state, key = W.unwrap_state_dict({"generator": {"module.conv.weight": np.zeros(2)}, "discriminator": {}})
    assert key == "generator" and list(state) == ["conv.weight"]


def test_training_checkpoint_nets_are_found_one_level_down():
    ckpt = {"nets": {"generator": {"g.weight": np.zeros(1)}, "discriminator": {"d.weight": np.zeros(1)}}, "iter": 5}
    assert W.unwrap_state_dict(ckpt) == ({"g.weight": np.zeros(1)}, "nets.generator")
    assert list(W.unwrap_state_dict(ckpt, key="nets.discriminator")[0]) == ["d.weight"]


def test_missing_key_names_the_keys_that_exist():
    with pytest.raises(UserError, match="no state dict under key 'params'.*params_ema"):
        W.unwrap_state_dict({"params_ema": {"a": np.zeros(1)}}, key="params")


def test_unknown_layout_lists_a_few_keys():
    with pytest.raises(UserError, match="unknown weights layout.*encoder.0.weight"):
        W.canonicalize({"encoder.0.weight": np.zeros((4, 3, 3, 3)), "head.bias": np.zeros(4)}, "torch")


def test_extra_keys_are_listed_as_unplaced():
    state = random_state(TINY)
    state["body.0.rdb1.conv1x1.weight"] = np.zeros((4, 8, 1, 1), np.float32)
    with pytest.raises(UserError, match="1 key.*no place in RRDBNet.*conv1x1"):
        W.canonicalize(state, "torch")


def test_a_missing_layer_is_reported_with_the_inferred_hyperparameters():
    state = random_state(TINY)
    del state["body.1.rdb2.conv3.bias"]
    with pytest.raises(UserError, match=r"nb=2.*1 missing \(body.1.rdb2.conv3.bias\)"):
        W.canonicalize(state, "torch")


def test_esrgan2018_x2_layout_is_refused():
    state = W.to_framework(W.Canonical(W.GENERATOR, "", random_state(TINY), dict(TINY)), "torch", "esrgan2018")
    state["model.5.weight"], state["model.7.weight"] = state.pop("model.8.weight"), state.pop("model.10.weight")
    del state["model.6.weight"]
    with pytest.raises(UserError, match="1 upsampling stage"):
        W.canonicalize(state, "torch")


def test_vgg_discriminator_paddle_layout_transposes_linear_and_renames_batchnorm():
    hp = {"in_channels": 3, "num_feat": 8, "input_size": 128}
    rng = np.random.default_rng(0)
    shapes = W.expected_shapes(W.VGG_DISCRIMINATOR, hp)
    state = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    pd = W.to_framework(W.canonicalize(state, "torch"), "paddle")
    assert pd["linear1.weight"].shape == (8 * 8 * 16, 100)
    np.testing.assert_array_equal(pd["linear1.weight"], state["linear1.weight"].T)
    np.testing.assert_array_equal(pd["bn2_1._variance"], state["bn2_1.running_var"])
    assert not any(k.endswith(("num_batches_tracked", "running_mean")) for k in pd)
    back = W.canonicalize(pd, "paddle")
    assert back.hparams == hp and set(back.state) == set(state)
    np.testing.assert_array_equal(back.state["linear1.weight"], state["linear1.weight"])


# ------------------------------------------------------------------------------------ reference architectures
class OldDenseBlock(nn.Module):
    """ESRGAN-2018's ResidualDenseBlock_5C: each conv in an nn.Sequential (conv, act) -> keys convJ.0.*."""

    def __init__(self, nf, gc):
        super().__init__()
        for j in range(1, 6):
            layers = [nn.Conv2d(nf + (j - 1) * gc, gc if j < 5 else nf, 3, 1, 1)]
            setattr(self, f"conv{j}", nn.Sequential(*layers, *([nn.LeakyReLU(0.2)] if j < 5 else [])))

    def forward(self, x):
        feats = [x]
        for j in range(1, 6):
            feats.append(getattr(self, f"conv{j}")(torch.cat(feats, 1)))
        return feats[-1] * 0.2 + x


class OldRRDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.RDB1, self.RDB2, self.RDB3 = OldDenseBlock(nf, gc), OldDenseBlock(nf, gc), OldDenseBlock(nf, gc)

    def forward(self, x):
        return self.RDB3(self.RDB2(self.RDB1(x))) * 0.2 + x


class Shortcut(nn.Module):
    def __init__(self, sub):
        super().__init__()
        self.sub = sub

    def forward(self, x):
        return x + self.sub(x)


class OldESRGAN(nn.Module):
    """ESRGAN-2018 x4 generator: one flattened nn.Sequential named ``model``."""

    def __init__(self, in_nc, out_nc, nf, nb, gc):
        super().__init__()
        up = [nn.Upsample(scale_factor=2, mode="nearest")]
        self.model = nn.Sequential(
            nn.Conv2d(in_nc, nf, 3, 1, 1),
            Shortcut(nn.Sequential(*[OldRRDB(nf, gc) for _ in range(nb)], nn.Conv2d(nf, nf, 3, 1, 1))),
            *up, nn.Conv2d(nf, nf, 3, 1, 1), nn.LeakyReLU(0.2),
            *up, nn.Conv2d(nf, nf, 3, 1, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(nf, nf, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(nf, out_nc, 3, 1, 1))

    def forward(self, x):
        return self.model(x)


def test_esrgan2018_checkpoint_runs_the_same_in_paddle(tmp_path):
    torch.manual_seed(0)
    old = OldESRGAN(3, 3, 8, 2, 4).eval()
    torch.save(old.state_dict(), tmp_path / "old.pth")
    cw.main(["--to", "paddle", str(tmp_path / "old.pth"), str(tmp_path / "new.pdparams")])
    canon = cw.load_canonical(tmp_path / "new.pdparams")
    assert canon.naming == "ppgan" and canon.hparams == TINY
    x = rand_input((1, 3, 12, 10))
    got = cw.forward_fn(cw.build_model(canon, "paddle"), "paddle")(x)
    np.testing.assert_allclose(got, torch_out(old, x), atol=1e-5)


def test_basicsr_pth_loads_into_paddlegan_rrdbnet(tmp_path):
    from ppgan_compat import import_ppgan
    ppgan_rrdb = import_ppgan("ppgan.models.generators.rrdb_net")
    net = torch_rrdbnet(gc=4)
    torch.save({"params_ema": net.state_dict(), "params": {}}, tmp_path / "net_g.pth")
    cw.main(["--to", "paddle", str(tmp_path / "net_g.pth"), str(tmp_path / "g.pdparams")])
    loaded = WF.read_paddle(str(tmp_path / "g.pdparams"))
    assert list(loaded) == ["generator"]
    ref = ppgan_rrdb.RRDBNet(3, 3, 8, 2, gc=4)
    missing, unexpected = ref.set_state_dict({k: paddle.to_tensor(v) for k, v in loaded["generator"].items()})
    assert not missing and not unexpected
    ref.eval()
    x = rand_input((1, 3, 9, 11))
    np.testing.assert_allclose(ref(paddle.to_tensor(x)).numpy(), torch_out(net, x), atol=1e-5)


@pytest.mark.parametrize("scale,gc", [(2, 4), (1, 12)])
def test_paddle_to_torch_round_trip_for_unshuffle_scales(tmp_path, scale, gc, capsys):
    net = torch_rrdbnet(scale=scale, gc=gc)
    torch.save({"params": net.state_dict()}, tmp_path / "a.pth")
    cw.main(["--to", "paddle", str(tmp_path / "a.pth"), str(tmp_path / "b.pdparams"), "--verify"])
    assert "verify: max |paddle - torch|" in capsys.readouterr().out
    cw.main(["--to", "torch", str(tmp_path / "b.pdparams"), str(tmp_path / "c.pth")])
    back = torch.load(tmp_path / "c.pth")
    assert list(back) == ["params_ema"]
    for k, v in net.state_dict().items():
        assert torch.equal(back["params_ema"][k], v), k


def trained(model, x, steps=2):
    """Random weights and BatchNorm affine terms, then a few train-mode passes so BatchNorm statistics and
    spectral-norm vectors are not at their init values either."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (0.05 if "linear" in name else 0.3))
        model.train()
        for _ in range(steps):
            model(x)
    return model.eval()


@pytest.mark.parametrize("name,size", [("VGGDiscriminator128", 128), ("UNetDiscriminatorSN", 32)])
def test_discriminators_give_the_same_logits_in_paddle(tmp_path, name, size):
    from torch_impl.archs import build_arch
    torch.manual_seed(0)
    net = trained(build_arch({"name": name, "num_feat": 8}), torch.rand(2, 3, size, size))
    torch.save({"params": net.state_dict()}, tmp_path / "d.pth")
    cw.main(["--to", "paddle", str(tmp_path / "d.pth"), str(tmp_path / "d.pdparams")])
    assert list(WF.read_paddle(str(tmp_path / "d.pdparams"))) == ["discriminator"]
    canon = cw.load_canonical(tmp_path / "d.pdparams")
    x = rand_input((2, 3, size, size))
    x[1] = np.linspace(0, 1, size, dtype=np.float32)  # a ramp, unlike the noise in x[0]
    want = torch_out(net, x)
    got = cw.forward_fn(cw.build_model(canon, "paddle"), "paddle")(x)
    assert abs(want[0] - want[1]).max() > 1e-4  # the logits depend on the input
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_paddle_discriminator_written_for_torch_loads_strictly_into_torchs_net(tmp_path, suffix):
    """0-d buffers (BatchNorm's num_batches_tracked) stay 0-d, as torch's own state_dict holds them."""
    from torch_impl.archs import build_arch
    net = build_arch({"name": "VGGDiscriminator128", "num_feat": 8})
    canon = W.canonicalize({k: v.numpy() for k, v in net.state_dict().items()}, "torch")
    cw.save_weights(canon, "paddle", str(tmp_path / "d.pdparams"))
    cw.main(["--to", "torch", str(tmp_path / "d.pdparams"), str(tmp_path / f"d{suffix}")])
    state = cw.load_canonical(tmp_path / f"d{suffix}")
    out = tmp_path / "again.pth"
    cw.save_weights(state, "torch", str(out), layout="flat")
    loaded = torch.load(out, weights_only=True)
    assert loaded["bn0_1.num_batches_tracked"].shape == net.state_dict()["bn0_1.num_batches_tracked"].shape == ()
    net.load_state_dict(loaded, strict=True)


def test_torchvision_vgg_becomes_a_flat_pdparams_with_transposed_classifier(tmp_path):
    vgg = {"features.0.weight": torch.randn(4, 3, 3, 3), "features.0.bias": torch.randn(4),
           "features.2.weight": torch.randn(4, 4, 3, 3), "features.2.bias": torch.randn(4),
           "classifier.0.weight": torch.randn(5, 16), "classifier.0.bias": torch.randn(5)}
    torch.save(vgg, tmp_path / "vgg19-dcbb9e9d.pth")
    cw.main(["--to", "paddle", str(tmp_path / "vgg19-dcbb9e9d.pth"), str(tmp_path / "vgg19.pdparams")])
    got = WF.read_paddle(str(tmp_path / "vgg19.pdparams"))
    assert set(got) == set(vgg)
    np.testing.assert_array_equal(got["features.2.weight"], vgg["features.2.weight"].numpy())
    np.testing.assert_array_equal(got["classifier.0.weight"], vgg["classifier.0.weight"].numpy().T)


# ------------------------------------------------------------------------------------------------- user errors
def test_layout_flat_and_naming_options(tmp_path):
    torch.save(torch_rrdbnet().state_dict(), tmp_path / "flat.pth")
    cw.main([str(tmp_path / "flat.pth"), str(tmp_path / "o.pth"), "--layout", "flat", "--naming", "ppgan"])
    assert "trunk_conv.weight" in torch.load(tmp_path / "o.pth")


def test_paddle_file_named_pth_is_an_error(tmp_path):
    paddle.save({"generator": {"w": paddle.zeros([1])}}, str(tmp_path / "x.pth"))
    with pytest.raises(UserError, match="holds Paddle weights.*rename it to .pdparams"):
        cw.read_checkpoint(tmp_path / "x.pth")


def test_pickled_python_objects_are_refused_naming_the_global(tmp_path):
    import argparse
    torch.save({"params": {"w": torch.zeros(1)}, "opt": argparse.Namespace(lr=1)}, tmp_path / "x.pth")
    with pytest.raises(UserError, match=r"x.pth: it holds objects a weights file must not hold \(argparse.Namespace\)"):
        cw.read_checkpoint(tmp_path / "x.pth")


def test_output_extension_must_match_target(tmp_path):
    with pytest.raises(UserError, match="must end in .pdparams"):
        cw.main(["--to", "paddle", "in.pth", str(tmp_path / "out.pth")])


def test_wrong_scale_weights_summarise_mismatched_keys():
    canon = W.Canonical(W.GENERATOR, "basicsr", random_state(TINY), {**TINY, "scale": 2})
    with pytest.raises(UserError, match="conv_first.weight .* of another shape|another shape.*conv_first"):
        cw.build_model(canon, "torch")


def test_cli_error_is_one_line_with_exit_status_2(tmp_path):
    torch.save({"params": {"encoder.weight": torch.zeros(2, 2)}}, tmp_path / "other.pth")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert_weights.py"), "--to", "paddle",
                           str(tmp_path / "other.pth"), str(tmp_path / "o.pdparams")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "encoder.weight" in lines[0], proc.stderr
    assert not (tmp_path / "o.pdparams").exists()

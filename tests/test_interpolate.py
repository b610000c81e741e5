"""tools/interpolate.py: ESRGAN's net_interp across formats and namings."""
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytest.importorskip("torch")
pytest.importorskip("paddle")

from esrgan_twin.commands import convert as cw
from esrgan_twin.command_errors import run_cli
from esrgan_twin.commands import interpolate
from common_data.weights import naming as W
from common_data.errors import UserError


def generator(seed, **hp):
    hp = dict(dict(in_nc=3, out_nc=3, nf=8, nb=1, gc=4, scale=4), **hp)
    rng = np.random.default_rng(seed)
    state = {k: rng.standard_normal(s).astype(np.float32) for k, s in W.expected_shapes(W.GENERATOR, hp).items()}
    return W.Canonical(W.GENERATOR, "basicsr", state, hp)


@pytest.fixture()
def pair(tmp_path):
    """A as .pth (BasicSR names), B as .pdparams (PaddleGAN names)."""
    a, b = generator(0), generator(1)
    cw.save_weights(a, "torch", tmp_path / "a.pth")
    cw.save_weights(b, "paddle", tmp_path / "b.pdparams")
    return a, b, tmp_path / "a.pth", tmp_path / "b.pdparams"


def run(*args):
    return interpolate.main([str(a) for a in args])


@pytest.mark.parametrize("alpha,which", [(0.0, 0), (1.0, 1)])
def test_alpha_0_and_1_reproduce_the_inputs_exactly(pair, tmp_path, alpha, which):
    out = tmp_path / "out.pth"
    assert run(pair[2], pair[3], "--alpha", alpha, "-o", out) == 0
    got = cw.load_canonical(out)
    assert set(got.state) == set(pair[which].state)
    for k, v in pair[which].state.items():
        np.testing.assert_array_equal(got.state[k], v)


def test_alpha_half_is_the_numpy_mean(pair, tmp_path):
    out = tmp_path / "half.pdparams"
    assert run(pair[2], pair[3], "--alpha", 0.5, "-o", out) == 0
    got = cw.load_canonical(out)
    for k in pair[0].state:
        np.testing.assert_array_equal(got.state[k], np.mean([pair[0].state[k], pair[1].state[k]], axis=0))


def test_cross_format_inputs_and_an_esrgan2018_file_give_the_blend_in_the_output_format(tmp_path):
    a, b = generator(2), generator(3)
    cw.save_weights(a, "paddle", tmp_path / "a.pdparams")
    cw.save_weights(b, "torch", tmp_path / "b.pth", layout="flat", naming="esrgan2018")
    out = tmp_path / "blend.pdparams"
    assert run(tmp_path / "a.pdparams", tmp_path / "b.pth", "--alpha", 0.3, "-o", out) == 0
    raw, framework = cw.read_checkpoint(out)
    assert framework == "paddle" and list(raw) == ["generator"]  # PaddleGAN layout and names
    assert "RRDB_trunk.0.RDB1.conv1.weight" in raw["generator"]
    got = cw.load_canonical(out)
    for k in a.state:
        np.testing.assert_allclose(got.state[k], 0.7 * a.state[k] + 0.3 * b.state[k], rtol=1e-6, atol=1e-7)


def test_different_sizes_are_a_one_line_error_naming_the_keys(tmp_path):
    cw.save_weights(generator(0), "torch", tmp_path / "a.pth")
    cw.save_weights(generator(1, nf=16), "torch", tmp_path / "wide.pth")
    cw.save_weights(generator(1, nb=2), "paddle", tmp_path / "deep.pdparams")
    with pytest.raises(UserError, match=r"differ: .*wide.pth has \d+ of another shape \(conv_first.weight") as e:
        run(tmp_path / "a.pth", tmp_path / "wide.pth", "--alpha", 0.5, "-o", tmp_path / "x.pth")
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match=r"deep.pdparams has 30 unexpected \(body.1.rdb1.conv1.weight"):
        run(tmp_path / "a.pth", tmp_path / "deep.pdparams", "--alpha", 0.5, "-o", tmp_path / "x.pth")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: run(tmp_path / "a.pth", tmp_path / "wide.pth", "--alpha", 0.5, "-o", tmp_path / "x.pth"))
    assert exit_info.value.code == 2
    assert not (tmp_path / "x.pth").exists()


def test_a_generator_and_a_discriminator_do_not_blend(tmp_path):
    hp = {"num_in_ch": 3, "num_feat": 4, "skip_connection": True}
    disc = {k: np.zeros(s, np.float32) for k, s in W.expected_shapes(W.UNET_DISCRIMINATOR, hp).items()}
    cw.save_weights(W.Canonical(W.UNET_DISCRIMINATOR, "basicsr", disc, hp), "torch", tmp_path / "d.pth")
    cw.save_weights(generator(0), "torch", tmp_path / "g.pth")
    with pytest.raises(UserError, match="is RRDBNet .* but .* is UNetDiscriminatorSN"):
        run(tmp_path / "g.pth", tmp_path / "d.pth", "--alpha", 0.5, "-o", tmp_path / "x.pth")


def test_output_must_not_overwrite_an_input_and_needs_a_known_extension(pair, tmp_path):
    with pytest.raises(UserError, match="overwrite the input"):
        run(pair[2], pair[3], "--alpha", 0.5, "-o", pair[2])
    with pytest.raises(UserError, match=r"end the output in \.pth"):
        run(pair[2], pair[3], "--alpha", 0.5, "-o", tmp_path / "x.bin")

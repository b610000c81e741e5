"""traiNNer's training features (issue 17) on both backends, through the one training core: FreezeD, feature
matching, a pretrained discriminator, loss stages, WGAN-GP."""
import os

import numpy as np
import pytest

from common_data.errors import ConfigError, UserError
from test_paddle_models import CONST_LR, MODEL_CFGS, TWO_OPTS, fixed_batch

FRAMEWORKS = ["paddle", "torch"]
VGG_D = {"name": "VGGDiscriminator128", "in_channels": 3, "num_feat": 4}
UNET_D = {"name": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4}
GAN_MODELS = {"ESRGAN": 128, "RealESRGAN": 32}  # model name -> GT size its discriminator takes


def build(framework, name, seed=0, optimizers=True, **extra):
    """A tiny model of test_paddle_models.MODEL_CFGS with ``extra`` model options, seeded, optimizers set up."""
    if framework == "paddle":
        import paddle
        from paddle_impl.models import build_model
        paddle.seed(seed)
    else:
        import torch
        from torch_impl.models import build_model
        torch.manual_seed(seed)
    model = build_model(dict(MODEL_CFGS[name][0], **extra))
    if framework == "torch":
        model.setup("cpu")
    if optimizers:
        model.setup_optimizers(TWO_OPTS if "discriminator" in model.nets else MODEL_CFGS[name][1], CONST_LR)
    return model


def to_numpy(tensor):
    return np.array(tensor.detach().cpu().numpy() if hasattr(tensor, "cpu") else tensor.numpy(), copy=True)


def named_parameters(model, net):
    """The learnable parameters (paddle lists BatchNorm's running statistics as parameters too: not these)."""
    return {k: p for k, p in model.net(net).named_parameters() if not k.endswith(("._mean", "._variance"))}


def parameters(model, net):
    return {k: to_numpy(p) for k, p in named_parameters(model, net).items()}


def run_iters(model, batch, iters, start=1):
    model.setup_input(batch)
    history = []
    for it in range(start, start + iters):
        model.current_iter = it
        model.set_micro_step(0, 1)
        model.train_iter()
        model.end_iteration()
        model.step_schedulers()
        history.append(model.get_current_losses())
    return history


# ---------------------------------------------------------------------------------------------------------- FreezeD
def frozen_names(model):
    from common_data.training.freeze_d import frozen_parameter_names
    net_d = model.net("discriminator")
    return frozen_parameter_names(list(named_parameters(model, "discriminator")), net_d.blocks(),
                                  model.frozen_d_blocks)


def optimizer_holds(framework, model, name):
    """Whether the discriminator's optimizer has ``name`` (a D parameter) among its parameters or its state."""
    opt = model.optimizer_for("discriminator")
    param = dict(model.net("discriminator").named_parameters())[name]
    if framework == "torch":
        return (any(p is param for g in opt.param_groups for p in g["params"]) or param in opt.state)
    from paddle_impl.engine.checkpoint import optimizer_state
    state = optimizer_state(opt, {"discriminator": model.net("discriminator")})
    return (any(p is param for p in opt._parameter_list)
            or any(k.startswith(f"discriminator.{name}_") for k in state))


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name,blocks", [("ESRGAN", ["conv0_0", "conv0_1", "conv1_0"]),
                                         ("RealESRGAN", ["conv0", "conv1", "conv2"])])
def test_freeze_d_layers_keeps_the_first_k_blocks_fixed_and_trains_the_rest(framework, name, blocks):
    # plain GAN form: the relativistic pair cancels linear2.bias's gradient, which would look frozen
    model = build(framework, name, freeze_d_layers=3, **({"relativistic": False} if name == "ESRGAN" else {}))
    assert model.frozen_d_blocks == blocks
    frozen = frozen_names(model)
    assert frozen and all(n.split(".")[0] in blocks or n.split(".")[0].replace("bn", "conv") in blocks
                          for n in frozen)
    before = parameters(model, "discriminator")
    run_iters(model, fixed_batch(GAN_MODELS[name]), 3)
    after = parameters(model, "discriminator")
    for key in before:
        if key in frozen:
            assert np.array_equal(before[key], after[key]), key
            assert named_parameters(model, "discriminator")[key].grad is None, key
            assert not optimizer_holds(framework, model, key), key
        else:
            assert not np.array_equal(before[key], after[key]), key
            assert optimizer_holds(framework, model, key), key


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_freeze_d_layers_takes_block_names_and_freezes_batchnorm_with_its_conv(framework):
    model = build(framework, "ESRGAN", freeze_d_layers=["conv1_1", "conv0_0"])
    assert model.frozen_d_blocks == ["conv0_0", "conv1_1"]
    assert set(frozen_names(model)) == {"conv0_0.weight", "conv0_0.bias", "conv1_1.weight", "bn1_1.weight",
                                        "bn1_1.bias"}


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("spec,message", [(12, "must be in 0..11"), (["conv9_9"], "no block 'conv9_9'"),
                                          (True, "number of blocks or a list"), ("conv0_0", "number of blocks")])
def test_a_bad_freeze_d_layers_is_a_one_line_config_error(framework, spec, message):
    with pytest.raises(ConfigError, match=message) as err:
        build(framework, "ESRGAN", optimizers=False, freeze_d_layers=spec)
    assert "model.freeze_d_layers" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_freeze_d_layers_without_a_discriminator_is_a_config_error(framework):
    with pytest.raises(ConfigError, match="freeze_d_layers needs a model.discriminator"):
        build(framework, "ESRGAN", optimizers=False, discriminator=None, gan_criterion=None, freeze_d_layers=2)


# ------------------------------------------------------------------------------------------------ feature matching
def np_conv(x, w, b=None, stride=1):
    """3x3 / 4x4 convolution with padding 1, NCHW, float64."""
    x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(x, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    out = np.einsum("nchwij,ocij->nohw", win, w)
    return out if b is None else out + b[None, :, None, None]


def np_lrelu(x):
    return np.where(x >= 0, x, 0.2 * x)


def np_batchnorm_train(x, gamma, beta, eps=1e-5):
    mean, var = x.mean((0, 2, 3), keepdims=True), x.var((0, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma[None, :, None, None] + beta[None, :, None, None]


def np_up2(x):
    """Bilinear x2, align_corners=False (source clamped at the borders)."""
    def matrix(n):
        a = np.zeros((2 * n, n))
        for o in range(2 * n):
            src = max((o + 0.5) / 2 - 0.5, 0.0)
            i0 = int(np.floor(src))
            i1, lam = min(i0 + 1, n - 1), src - i0
            a[o, i0] += 1 - lam
            a[o, i1] += lam
        return a
    return np.einsum("ah,nchw,bw->ncab", matrix(x.shape[2]), x, matrix(x.shape[3]))


def np_state(framework, net):
    """A discriminator's tensors as float64 numpy, Linear weights (out, in) as in torch."""
    out = {}
    for k, v in net.state_dict().items():
        a = to_numpy(v).astype(np.float64)
        out[k] = a.T if framework == "paddle" and k.startswith("linear") and k.endswith(".weight") else a
    return out


def np_vgg_features(w, x):
    """VGGDiscriminator128 in train mode (BatchNorm on batch statistics): the features after every block but the
    last, written out from the architecture (ESRGAN / BasicSR's VGGStyleDiscriminator)."""
    feats = [np_lrelu(np_conv(x, w["conv0_0.weight"], w["conv0_0.bias"]))]
    for s in ["0_1", "1_0", "1_1", "2_0", "2_1", "3_0", "3_1", "4_0", "4_1"]:
        conv = np_conv(feats[-1], w[f"conv{s}.weight"], stride=2 if s.endswith("_1") else 1)
        feats.append(np_lrelu(np_batchnorm_train(conv, w[f"bn{s}.weight"], w[f"bn{s}.bias"])))
    flat = feats[-1].reshape(len(x), -1)
    feats.append(np_lrelu(flat @ w["linear1.weight"].T + w["linear1.bias"]))
    return feats


def np_unet_features(w, x):
    """UNetDiscriminatorSN in eval mode (spectral norm from the stored u, v: W / (u . W v)), Real-ESRGAN's forward."""
    def sn(name):
        orig = w[f"{name}.weight_orig"]
        sigma = w[f"{name}.weight_u"] @ orig.reshape(len(orig), -1) @ w[f"{name}.weight_v"]
        return orig / sigma
    x0 = np_lrelu(np_conv(x, w["conv0.weight"], w["conv0.bias"]))
    x1 = np_lrelu(np_conv(x0, sn("conv1"), stride=2))
    x2 = np_lrelu(np_conv(x1, sn("conv2"), stride=2))
    x3 = np_lrelu(np_conv(x2, sn("conv3"), stride=2))
    x4 = np_lrelu(np_conv(np_up2(x3), sn("conv4"))) + x2
    x5 = np_lrelu(np_conv(np_up2(x4), sn("conv5"))) + x1
    x6 = np_lrelu(np_conv(np_up2(x5), sn("conv6"))) + x0
    x7 = np_lrelu(np_conv(x6, sn("conv7")))
    x8 = np_lrelu(np_conv(x7, sn("conv8")))
    return [x0, x1, x2, x3, x4, x5, x6, x7, x8]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ["ESRGAN", "RealESRGAN"])
def test_feature_matching_loss_equals_the_hand_computed_l1_of_the_discriminators_features(framework, name):
    """l_g_fm of one generator step = weight * mean over layers of mean |F(G(lq)) - F(gt)|, the features computed
    in numpy from the discriminator's weights (VGG128 in train mode, the U-Net in eval mode: its spectral norm
    then uses the stored u, v instead of a power iteration per forward)."""
    weight = 0.5
    model = build(framework, name, feature_matching_weight=weight)
    net_d = model.net("discriminator")
    if name == "RealESRGAN":
        net_d.eval()
    w = np_state(framework, net_d)
    batch = fixed_batch(GAN_MODELS[name], n=2)
    run_iters(model, batch, 1)
    fake = to_numpy(model.output).astype(np.float64)  # the output the generator step saw (before its update)
    hand = np_vgg_features if name == "ESRGAN" else np_unet_features
    real_feats, fake_feats = hand(w, batch["gt"].astype(np.float64)), hand(w, fake)
    expected = weight * np.mean([np.abs(f - r).mean() for r, f in zip(real_feats, fake_feats)])
    assert model.get_current_losses()["l_g_fm"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("name", ["ESRGAN", "RealESRGAN"])
def test_feature_matching_loss_is_the_same_on_both_backends_given_the_same_discriminator(name):
    """The same discriminator weights (converted torch -> paddle) in train mode on the same real / fake pair."""
    import paddle
    import torch
    from common_data.training.gan_forms import feature_matching_loss
    from common_data.weights import naming as W
    nets = {fw: build(fw, name, optimizers=False).net("discriminator") for fw in FRAMEWORKS}
    state = {k: to_numpy(v) for k, v in nets["torch"].state_dict().items()}
    nets["paddle"].set_state_dict(W.to_framework(W.canonicalize(state, "torch"), "paddle"))
    rng = np.random.default_rng(1)
    real, fake = (rng.random((2, 3, GAN_MODELS[name], GAN_MODELS[name])).astype(np.float32) for _ in range(2))
    values = {}
    for fw, to_tensor in (("paddle", paddle.to_tensor), ("torch", torch.from_numpy)):
        real_feats = nets[fw](to_tensor(real), return_feats=True)[1]
        fake_feats = nets[fw](to_tensor(fake), return_feats=True)[1]
        values[fw] = float(feature_matching_loss(real_feats, fake_feats))
    assert values["paddle"] == pytest.approx(values["torch"], rel=1e-5)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_discriminators_features_end_where_its_logits_begin(framework):
    """return_feats changes nothing about the logits."""
    for name in GAN_MODELS:
        net_d = build(framework, name, optimizers=False).net("discriminator")
        net_d.eval()
        x = fixed_batch(GAN_MODELS[name])["gt"]
        x = __import__("paddle").to_tensor(x) if framework == "paddle" else __import__("torch").from_numpy(x)
        logits, feats = net_d(x, return_feats=True)
        assert np.array_equal(to_numpy(logits), to_numpy(net_d(x)))
        assert len(feats) == (11 if name == "ESRGAN" else 9)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("extra,message", [({"feature_matching_weight": -1}, "must be a number >= 0"),
                                           ({"feature_matching_weight": "high"}, "must be a number"),
                                           ({"feature_matching_weight": 1.0, "discriminator": None,
                                             "gan_criterion": None}, "needs a gan_criterion")])
def test_a_bad_feature_matching_weight_is_a_one_line_config_error(framework, extra, message):
    with pytest.raises(ConfigError, match=message) as err:
        build(framework, "ESRGAN", optimizers=False, **extra)
    assert "feature_matching_weight" in str(err.value) and "\n" not in str(err.value)


# -------------------------------------------------------------------------------------- pretrained discriminator
def basicsr_d_state(name, num_feat=4, seed=3):
    """A BasicSR-named discriminator state dict (PyTorch conventions, numpy), e.g. RealESRGAN_x4plus_netD's
    ``params``: built by torch with its own random initialisation and a few BatchNorm statistics set."""
    import torch
    from torch_impl.archs import build_arch
    torch.manual_seed(seed)
    cfg = dict(VGG_D if name == "ESRGAN" else UNET_D, num_feat=num_feat)
    state = {k: to_numpy(v) for k, v in build_arch(cfg).state_dict().items()}
    for k in state:
        if k.endswith("running_mean"):
            state[k] = np.linspace(-0.1, 0.1, len(state[k]), dtype=np.float32)
    return state


def save_basicsr_d(framework, state, path, key="params", drop=None):
    """``{key: state}`` as BasicSR writes net_d files: a .pth for torch, the converted .pdparams for paddle;
    ``drop``: leave out the tensors whose names start with it."""
    from common_data.weights import naming as W
    if framework == "paddle":
        state = W.to_framework(W.canonicalize(state, "torch"), "paddle")
    state = {k: v for k, v in state.items() if not (drop and k.startswith(drop))}
    if framework == "torch":
        import torch
        torch.save({key: {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}}, path)
    else:
        from paddle_impl.engine.checkpoint import save_weights
        save_weights(path, {key: state})
    return str(path)


def d_in_torch_conventions(framework, model):
    from common_data.weights import naming as W
    state = {k: to_numpy(v) for k, v in model.net("discriminator").state_dict().items()}
    return state if framework == "torch" else W.to_framework(W.canonicalize(state, "paddle"), "torch")


EXT = {"paddle": ".pdparams", "torch": ".pth"}


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ["ESRGAN", "RealESRGAN"])
@pytest.mark.parametrize("container", ["params", "discriminator", "safetensors"])
def test_pretrain_network_d_loads_a_basicsr_discriminator(framework, name, container, tmp_path):
    """BasicSR's net_d file ({'params': state}), PaddleGAN's / convert_weights' ({'discriminator': state}) or a flat
    .safetensors, param_key_d unset: every tensor lands where BasicSR had it."""
    from common_data.weights.files import write_safetensors
    state = basicsr_d_state(name)
    if container != "safetensors":
        path = save_basicsr_d(framework, state, tmp_path / f"net_d{EXT[framework]}", key=container)
    else:
        path = str(tmp_path / "net_d.safetensors")
        write_safetensors(path, state)
    model = build(framework, name, pretrain_network_d=path)
    loaded = d_in_torch_conventions(framework, model)
    for key, value in state.items():
        if not key.endswith("num_batches_tracked"):  # paddle keeps no counter
            assert np.array_equal(loaded[key], value), key


@pytest.mark.parametrize("name", ["ESRGAN", "RealESRGAN"])
def test_a_pretrained_discriminator_judges_alike_on_both_backends(name, tmp_path):
    import paddle
    import torch
    state, logits = basicsr_d_state(name), {}
    x = fixed_batch(GAN_MODELS[name], n=2)["gt"]
    for fw, to_tensor in (("paddle", paddle.to_tensor), ("torch", torch.from_numpy)):
        net_d = build(fw, name, pretrain_network_d=save_basicsr_d(fw, state, tmp_path / f"d{EXT[fw]}"),
                      optimizers=False).net("discriminator")
        net_d.eval()
        logits[fw] = to_numpy(net_d(to_tensor(x)))
    # a random U-Net's spectral norm (u, v not yet iterated) gives logits near 1e6: compare relative to their scale
    np.testing.assert_allclose(logits["paddle"], logits["torch"], rtol=1e-4, atol=1e-5 * np.abs(logits["torch"]).max())


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_discriminator_of_another_width_is_refused_in_one_line_naming_the_tensor(framework, tmp_path):
    path = save_basicsr_d(framework, basicsr_d_state("RealESRGAN", num_feat=8), tmp_path / f"d{EXT[framework]}")
    with pytest.raises((ConfigError, UserError), match=r"conv0\.weight.*\(8, 3, 3, 3\)") as err:
        build(framework, "RealESRGAN", pretrain_network_d=path, optimizers=False)
    assert "\n" not in str(err.value) and path in str(err.value)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_discriminator_of_another_architecture_is_refused_in_one_line(framework, tmp_path):
    path = save_basicsr_d(framework, basicsr_d_state("ESRGAN"), tmp_path / f"d{EXT[framework]}")
    with pytest.raises((ConfigError, UserError), match="missing.*unexpected|unexpected.*missing") as err:
        build(framework, "RealESRGAN", pretrain_network_d=path, optimizers=False)
    assert "\n" not in str(err.value) and "strict_load_d" in str(err.value)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_strict_load_d_false_loads_the_tensors_that_fit(framework, tmp_path):
    state = basicsr_d_state("RealESRGAN")
    path = save_basicsr_d(framework, state, tmp_path / f"d{EXT[framework]}", drop="conv9.")
    with pytest.raises((ConfigError, UserError), match="missing"):
        build(framework, "RealESRGAN", pretrain_network_d=path, optimizers=False)
    fresh = d_in_torch_conventions(framework, build(framework, "RealESRGAN", optimizers=False))
    loaded = d_in_torch_conventions(framework, build(framework, "RealESRGAN", pretrain_network_d=path,
                                                     strict_load_d=False, optimizers=False))
    assert np.array_equal(loaded["conv1.weight_orig"], state["conv1.weight_orig"])
    assert np.array_equal(loaded["conv9.weight"], fresh["conv9.weight"])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_param_key_d_picks_the_entry_and_an_absent_one_is_refused_in_one_line(framework, tmp_path):
    state = basicsr_d_state("RealESRGAN")
    path = save_basicsr_d(framework, state, tmp_path / f"d{EXT[framework]}", key="net_d")
    model = build(framework, "RealESRGAN", pretrain_network_d=path, param_key_d="net_d", optimizers=False)
    assert np.array_equal(d_in_torch_conventions(framework, model)["conv0.weight"], state["conv0.weight"])
    with pytest.raises((ConfigError, UserError), match="no key 'params'.*param_key_d") as err:
        build(framework, "RealESRGAN", pretrain_network_d=path, param_key_d="params", optimizers=False)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_pretrained_discriminator_with_freeze_d_keeps_its_frozen_blocks(framework, tmp_path):
    state = basicsr_d_state("RealESRGAN")
    model = build(framework, "RealESRGAN", freeze_d_layers=2,
                  pretrain_network_d=save_basicsr_d(framework, state, tmp_path / f"d{EXT[framework]}"))
    run_iters(model, fixed_batch(32), 2)
    loaded = d_in_torch_conventions(framework, model)
    assert np.array_equal(loaded["conv0.weight"], state["conv0.weight"])
    assert np.array_equal(loaded["conv1.weight_orig"], state["conv1.weight_orig"])
    assert not np.array_equal(loaded["conv2.weight_orig"], state["conv2.weight_orig"])


# ------------------------------------------------------------------------------------------------------ loss stages
STAGES = [{"from_iter": 1, "losses": ["pixel"]}, {"from_iter": 3, "losses": ["pixel", "gan"]}]


def test_loss_stages_pick_the_stage_each_iteration_trains_in():
    from common_data.training.loss_stages import LossStages
    stages = LossStages.from_config([{"from_iter": 1, "losses": ["pixel"]},
                                     {"from_iter": 100, "losses": ["pixel", "edge"]},
                                     {"from_iter": 200, "losses": ["perceptual", "gan"]}],
                                    ["pixel", "edge", "perceptual", "gan"])
    assert [stages.index_at(it) for it in (1, 99, 100, 199, 200, 10 ** 6)] == [0, 0, 1, 1, 2, 2]
    assert stages.terms(2) == {"perceptual", "gan"}
    assert stages.describe(1) == "loss stage 2/3 (from iteration 100): pixel, edge"
    assert LossStages.from_config(None, ["pixel"]) is None and LossStages.from_config([], ["pixel"]) is None


@pytest.mark.parametrize("spec,message", [
    ({"from_iter": 1, "losses": ["pixel"]}, r"model.loss_stages must be a list"),
    ([{"from_iter": 2, "losses": ["pixel"]}], r"loss_stages\[0\].from_iter must be 1"),
    ([{"from_iter": 1, "losses": ["pixel"]}, {"from_iter": 1, "losses": ["gan"]}], r"\[1\].from_iter 1 must be larger"),
    ([{"from_iter": 1, "losses": ["pixel", "gan"], "until": 5}], r"\[0\] must be a mapping with exactly"),
    ([{"from_iter": 1, "losses": ["pixle", "gan"]}], r"unknown term 'pixle'"),
    ([{"from_iter": 1, "losses": "pixel"}], r"losses must be a non-empty list"),
    ([{"from_iter": 1, "losses": ["pixel", "gan", "perceptual"]}], r"perceptual is on but the model has no "
                                                                   r"perceptual_criterion"),
    ([{"from_iter": 1, "losses": ["pixel"]}], r"model.gan_criterion is configured but no stage turns gan on"),
    ([{"from_iter": True, "losses": ["pixel", "gan"]}], r"from_iter must be an iteration number"),
])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_bad_loss_stages_block_is_a_one_line_config_error(framework, spec, message):
    with pytest.raises(ConfigError, match=message) as err:
        build(framework, "ESRGAN", optimizers=False, loss_stages=spec)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ["ESRGAN", "RealESRGAN"])
def test_the_gan_stage_starts_at_its_iteration_and_the_discriminator_trains_only_then(framework, name):
    model = build(framework, name, loss_stages=STAGES)
    logged = []
    model.log = logged.append
    d0 = parameters(model, "discriminator")
    batch = fixed_batch(GAN_MODELS[name])
    first = run_iters(model, batch, 2)
    assert [set(h) for h in first] == [{"l_pix"}] * 2
    assert all(np.array_equal(v, parameters(model, "discriminator")[k]) for k, v in d0.items())
    later = run_iters(model, batch, 2, start=3)
    assert all({"l_pix", "l_g_gan", "l_d_real", "l_d_fake"} <= set(h) for h in later)
    assert any(not np.array_equal(v, parameters(model, "discriminator")[k]) for k, v in d0.items())
    assert logged == ["iteration 1: loss stage 1/2 (from iteration 1): pixel",
                      "iteration 3: loss stage 2/2 (from iteration 3): pixel, gan"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_feature_matching_can_run_in_a_stage_without_training_the_discriminator(framework):
    stages = [{"from_iter": 1, "losses": ["pixel", "feature_matching"]},
              {"from_iter": 2, "losses": ["pixel", "gan", "feature_matching"]}]
    model = build(framework, "RealESRGAN", feature_matching_weight=1.0, loss_stages=stages)
    d0 = parameters(model, "discriminator")
    (first,) = run_iters(model, fixed_batch(32), 1)
    assert set(first) == {"l_pix", "l_g_fm"}
    assert all(np.array_equal(v, parameters(model, "discriminator")[k]) for k, v in d0.items())
    (second,) = run_iters(model, fixed_batch(32), 1, start=2)
    assert {"l_g_gan", "l_g_fm", "l_d_real"} <= set(second)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from common_data.data.demo_data import make_demo_data
    root = tmp_path_factory.mktemp("demo")
    make_demo_data(root, num_train=4, num_test=1, size=32)
    return str(root)


def trainer_class(framework):
    if framework == "paddle":
        from paddle_impl.engine.trainer import Options, Trainer
    else:
        from torch_impl.engine.trainer import Options, Trainer
    return Trainer, Options


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_resumed_run_continues_in_the_stage_of_its_iteration(framework, demo, tmp_path):
    """Stages pixel (1-2) then pixel + edge (3-4): the full run and the run resumed from iter_2_checkpoint both log
    the switch at iteration 3 and train the same terms with the same values there."""
    import importlib.util
    from test_torch_engine import load_cfg, make_cfg, only_run_dir
    Trainer, Options = trainer_class(framework)
    vdl = importlib.util.find_spec("visualdl") is not None

    def cfg(out):
        c = make_cfg(demo, out, total_iters=4, model="BaseSRModel", snapshot_config={"interval": 2},
                     enable_visualdl=vdl)
        c["model"].update(edge_criterion={"name": "EdgeLoss", "loss_weight": 0.5},
                          loss_stages=[{"from_iter": 1, "losses": ["pixel"]},
                                       {"from_iter": 3, "losses": ["pixel", "edge"]}])
        c["dataset"]["train"]["batch_size"] = 1
        return load_cfg(tmp_path, c)

    full = Trainer(cfg(tmp_path / "a"), Options(seed=5))
    history = full.train()
    full.close()
    assert [set(h) for h in history] == [{"l_pix"}, {"l_pix"}, {"l_pix", "l_edge"}, {"l_pix", "l_edge"}]
    log = open(os.path.join(full.run_dir, "log.txt"), encoding="utf-8").read()
    assert "iteration 1: loss stage 1/2 (from iteration 1): pixel" in log
    assert "iteration 3: loss stage 2/2 (from iteration 3): pixel, edge" in log
    ext = ".pdparams" if framework == "paddle" else ".pth"
    resumed = Trainer(cfg(tmp_path / "b"), Options(resume=os.path.join(only_run_dir(tmp_path / "a"),
                                                                       f"iter_2_checkpoint{ext}")))
    rest = resumed.train()
    resumed.close()
    assert [set(h) for h in rest] == [{"l_pix", "l_edge"}] * 2
    for a, b in zip(history[2:], rest):
        assert a["l_edge"] == pytest.approx(b["l_edge"], rel=1e-5)
    log = open(os.path.join(resumed.run_dir, "log.txt"), encoding="utf-8").read()
    assert "iteration 3: loss stage 2/2 (from iteration 3): pixel, edge" in log and "stage 1/2" not in log
    if vdl:
        from visualdl import LogReader
        (record,) = [f for f in os.listdir(full.run_dir) if "vdlrecords" in f]
        reader = LogReader(file_path=os.path.join(full.run_dir, record))
        assert [int(r.value) for r in reader.get_data("scalar", "loss_stage")] == [1, 1, 2, 2]


# ---------------------------------------------------------------------------------------------------------- WGAN-GP
WGANGP = {"name": "GANLoss", "gan_mode": "wgangp", "gp_weight": 5.0, "loss_weight": 0.1}


def pixel_critic(framework, w):
    """D(x) = a 1x1 convolution with weights ``w`` (3,): per-pixel logits whose input gradient is ``w`` everywhere,
    so the penalty is (||w|| - 1)^2 at every mix of real and fake."""
    if framework == "paddle":
        import paddle
        critic = paddle.nn.Conv2D(3, 1, 1, bias_attr=False)
        critic.weight.set_value(paddle.to_tensor(w.reshape(1, 3, 1, 1)))
    else:
        import torch
        critic = torch.nn.Conv2d(3, 1, 1, bias=False)
        with torch.no_grad():
            critic.weight.copy_(torch.from_numpy(w.reshape(1, 3, 1, 1)))
    return critic


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_wgangp_adds_the_weighted_gradient_penalty_to_the_discriminators_loss_and_gradient(framework):
    """With a linear critic every term is closed-form: l_d_real = -mean D(gt), l_d_fake = mean D(fake),
    l_d_gp = 5 (||w|| - 1)^2, and D's weight gradient = -mean_px(gt) + mean_px(fake) + 10 (||w|| - 1) w / ||w||."""
    w = np.array([0.6, -1.2, 0.9], np.float32)
    model = build(framework, "RealESRGAN", optimizers=False, gan_criterion=WGANGP)
    model.nets["discriminator"] = pixel_critic(framework, w)
    model.setup_optimizers(TWO_OPTS, CONST_LR)
    batch = fixed_batch(32, n=2)
    (losses,) = run_iters(model, batch, 1)
    fake = to_numpy(model.output).astype(np.float64)
    gt, w64 = batch["gt"].astype(np.float64), w.astype(np.float64)
    norm = np.linalg.norm(w64)
    assert losses["l_d_gp"] == pytest.approx(5.0 * (norm - 1) ** 2, rel=1e-5)
    assert losses["l_d_real"] == pytest.approx(-np.einsum("c,nchw->nhw", w64, gt).mean(), rel=1e-5)
    assert losses["l_d_fake"] == pytest.approx(np.einsum("c,nchw->nhw", w64, fake).mean(), rel=1e-5)
    grad = to_numpy(model.nets["discriminator"].weight.grad).reshape(3)
    expected = -gt.mean((0, 2, 3)) + fake.mean((0, 2, 3)) + 10.0 * (norm - 1) * w64 / norm
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ["ESRGAN", "RealESRGAN"])
def test_wgangp_trains_both_discriminators(framework, name):
    model = build(framework, name, gan_criterion=WGANGP, **({"relativistic": False} if name == "ESRGAN" else {}))
    history = run_iters(model, fixed_batch(GAN_MODELS[name]), 2)
    assert all(np.isfinite(h["l_d_gp"]) and h["l_d_gp"] >= 0 for h in history)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("cfg,expected", [({"gan_mode": "wgangp"}, ("wgangp", 10.0)),
                                          ({"gan_type": "hinge", "gp_weight": 2}, ("hinge", 2.0)),
                                          ({"gan_type": "vanilla"}, ("vanilla", 0.0))])
def test_gp_weight_defaults_to_ten_for_wgangp_and_to_none_otherwise(framework, cfg, expected):
    build_loss = __import__(f"{framework}_impl.losses", fromlist=["build_loss"]).build_loss
    loss = build_loss(dict(cfg, name="GANLoss"))
    assert (loss.gan_type, loss.gp_weight) == expected


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("cfg,message", [({"gan_mode": "wgangp", "gp_weight": 0}, "wgangp with gp_weight 0"),
                                         ({"gan_mode": "wgan", "gp_weight": -1}, "gp_weight must be a number >= 0")])
def test_a_bad_gp_weight_is_a_one_line_config_error(framework, cfg, message):
    build_loss = __import__(f"{framework}_impl.losses", fromlist=["build_loss"]).build_loss
    with pytest.raises(ConfigError, match=message) as err:
        build_loss(dict(cfg, name="GANLoss"))
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------------- 1x restoration
@pytest.mark.parametrize("preset", ["realesrgan_default", "anime_light", "jpeg_only", "resize_only"])
def test_every_degradation_preset_makes_a_same_size_lq_at_scale_1(preset):
    from common_data.data.degradations import degrade
    gt = np.random.default_rng(0).random((52, 44, 3)).astype(np.float32)
    assert degrade(gt, {"preset": preset}, np.random.default_rng(1), scale=1).shape == gt.shape


def x1_config(demo_root, test_lq, out, generator):
    """configs/realesrnet_x1_restore.yaml as shipped, with a tiny generator, the demo GT, two iterations and the
    commented-out test / validate blocks switched on against a same-size degraded test set."""
    import yaml
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                           "realesrnet_x1_restore.yaml"), encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    assert cfg["model"]["generator"]["scale"] == 1 and cfg["dataset"]["train"]["scale"] == 1
    cfg["model"]["generator"] = generator
    cfg.update(total_iters=2, output_dir=str(out), enable_visualdl=False, log_config={"interval": 1},
               snapshot_config={"interval": 2},
               validate={"interval": 2, "save_img": True, "metrics": {"psnr": {"name": "PSNR", "crop_border": 0}}})
    cfg["dataset"]["train"].update(dataroot_gt=f"{demo_root}/train", gt_size=32, batch_size=1, num_workers=0,
                                   crop_pad_size=64)
    norm = {"name": "Normalize", "mean": [0.0] * 3, "std": [255.0] * 3, "keys": ["image", "image"]}
    cfg["dataset"]["test"] = {
        "name": "SRDataset", "gt_folder": f"{demo_root}/test", "lq_folder": test_lq, "scale": 1,
        "preprocess": [{"name": "LoadImageFromFile", "key": "lq"}, {"name": "LoadImageFromFile", "key": "gt"},
                       {"name": "Transforms", "input_keys": ["lq", "gt"],
                        "pipeline": [{"name": "Transpose", "keys": ["image", "image"]}, norm]}]}
    return cfg


@pytest.fixture(scope="module")
def restore_data(tmp_path_factory):
    """Demo GT (64 px) and its test images degraded at scale 1 (the same size) by realesrgan_default."""
    from common_data.data.degradations import degrade
    from common_data.data.demo_data import make_demo_data
    from common_data.data.imageio import list_images, read_image, write_image
    root = tmp_path_factory.mktemp("restore")
    make_demo_data(root / "demo", num_train=2, num_test=1, size=64)
    for i, path in enumerate(list_images(str(root / "demo" / "test"))):
        write_image(str(root / "test_lq" / os.path.basename(path)),
                    degrade(read_image(path), {"preset": "realesrgan_default"}, np.random.default_rng(i), scale=1))
    return str(root / "demo"), str(root / "test_lq")


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("generator", [{"name": "RRDBNet", "nf": 8, "nb": 1, "gc": 4, "scale": 1},
                                       {"name": "SRVGGNetCompact", "num_feat": 8, "num_conv": 2, "upscale": 1}],
                         ids=["rrdbnet", "compact"])
def test_the_1x_restoration_config_trains_and_validates_at_the_same_size(framework, generator, restore_data,
                                                                         tmp_path):
    from common_data.data.imageio import read_image
    from test_torch_engine import load_cfg
    Trainer, Options = trainer_class(framework)
    demo_root, test_lq = restore_data
    trainer = Trainer(load_cfg(tmp_path, x1_config(demo_root, test_lq, tmp_path / "out", generator)), Options(seed=1))
    history = trainer.train()
    trainer.close()
    assert len(history) == 2 and all(np.isfinite(h["l_pix"]) for h in history)
    assert tuple(trainer.model.lq.shape) == tuple(trainer.model.gt.shape)  # the last test pair: LQ at GT's size
    assert tuple(trainer.model.output.shape) == tuple(trainer.model.gt.shape)
    assert trainer.last_metrics["psnr"] > 0
    strips = os.listdir(os.path.join(trainer.run_dir, "visual_test"))
    assert strips and read_image(os.path.join(trainer.run_dir, "visual_test", strips[0])).shape[0] == 64


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_freeze_d_run_resumes_with_its_optimizer_state(framework, tmp_path):
    """A checkpoint written and read back with the same config: the frozen blocks stay out of the optimizer and
    the next iteration's losses equal the uninterrupted run's."""
    checkpoint = __import__(f"{framework}_impl.engine.checkpoint", fromlist=["save_checkpoint"])
    path = str(tmp_path / f"iter_2_checkpoint{EXT[framework]}")
    batch = fixed_batch(32)
    full = build(framework, "RealESRGAN", freeze_d_layers=3)
    run_iters(full, batch, 2)
    checkpoint.save_checkpoint(path, full.training_state())
    expected = run_iters(full, batch, 1, start=3)[0]
    resumed = build(framework, "RealESRGAN", seed=7, freeze_d_layers=3)
    resumed.load_training_state(checkpoint.load_checkpoint(path), path)
    got = run_iters(resumed, batch, 1, start=3)[0]
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    frozen = frozen_names(resumed)
    assert not any(optimizer_holds(framework, resumed, name) for name in frozen)


@pytest.mark.parametrize("saved, resumed", [(1, 3), (3, 1)], ids=["more-frozen", "fewer-frozen"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_checkpoint_resumed_with_other_frozen_blocks_is_refused_in_one_line(framework, saved, resumed):
    """Saved with conv0 frozen, resumed with conv0..conv2 frozen (the saved state trains conv1 / conv2), or the
    other way round (conv1 / conv2 would start with fresh Adam moments: paddle used to accept that silently)."""
    full = build(framework, "RealESRGAN", freeze_d_layers=saved)
    run_iters(full, fixed_batch(32), 1)
    with pytest.raises((ConfigError, UserError), match="optimizer state does not fit.*freeze_d_layers") as err:
        build(framework, "RealESRGAN", freeze_d_layers=resumed).load_training_state(full.training_state(), "ckpt")
    assert "\n" not in str(err.value)

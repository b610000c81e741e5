"""Paddle models: each one learns, EMA arithmetic, gradient accumulation, Real-ESRGAN's switches, weight loading."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import paddle  # noqa: E402
import pytest  # noqa: E402

from common_data.config.loading import load_config  # noqa: E402
from common_data.errors import ConfigError  # noqa: E402
from paddle_impl.engine.checkpoint import save_weights  # noqa: E402
from paddle_impl.models import MODELS, build_model  # noqa: E402
from paddle_impl.models.base_model import BaseModel  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_G = {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4}
ONE_OPT = {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99}
TWO_OPTS = {"optimG": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
            "optimD": {"name": "Adam", "net_names": ["discriminator"], "beta1": 0.9, "beta2": 0.99}}
CONST_LR = {"name": "MultiStepDecay", "learning_rate": 2e-3, "milestones": [10 ** 6]}
MODEL_CFGS = {
    "BaseSRModel": ({"name": "BaseSRModel", "generator": TINY_G, "pixel_criterion": {"name": "L1Loss"}}, ONE_OPT, 32),
    "RealESRNet": ({"name": "RealESRNet", "generator": TINY_G, "pixel_criterion": {"name": "L1Loss"}}, ONE_OPT, 32),
    "ESRGAN": ({"name": "ESRGAN", "generator": TINY_G,
                "discriminator": {"name": "VGGDiscriminator128", "in_channels": 3, "num_feat": 4},
                "pixel_criterion": {"name": "L1Loss"},
                "gan_criterion": {"name": "GANLoss", "gan_mode": "vanilla", "loss_weight": 5e-3}}, TWO_OPTS, 128),
    "RealESRGAN": ({"name": "RealESRGAN", "generator": TINY_G,
                    "discriminator": {"name": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4},
                    "pixel_criterion": {"name": "L1Loss"},
                    "gan_criterion": {"name": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1}}, TWO_OPTS, 32),
}


def fixed_batch(gt_size, n=1, seed=0):
    """A smooth random GT, its 4x4 box-mean LQ and a 'sharpened' gt_usm."""
    rng = np.random.default_rng(seed)
    gt = rng.random((n, 3, gt_size // 8, gt_size // 8)).astype(np.float32).repeat(8, 2).repeat(8, 3)
    lq = gt.reshape(n, 3, gt_size // 4, 4, gt_size // 4, 4).mean((3, 5))
    return {"lq": lq, "gt": gt, "gt_usm": np.clip(gt * 1.2 - 0.1, 0, 1).astype(np.float32),
            "lq_path": [f"img{i}.png" for i in range(n)]}


def make_model(name, **extra):
    cfg, opt, _ = MODEL_CFGS[name]
    paddle.seed(0)
    model = build_model(dict(cfg, **extra))
    model.setup_optimizers(opt, CONST_LR)
    return model


def train(model, batch, iters, start=1):
    history = []
    model.setup_input(batch)
    for it in range(start, start + iters):
        model.current_iter = it
        model.train_iter()
        model.end_iteration()
        model.step_schedulers()
        history.append(model.get_current_losses())
    return history


def params(net):
    return {k: v.numpy().copy() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("name", list(MODEL_CFGS))
def test_each_model_overfits_one_batch(name):
    model = make_model(name)
    history = train(model, fixed_batch(MODEL_CFGS[name][2]), 50)
    assert history[-1]["l_pix"] <= 0.7 * history[0]["l_pix"]
    if "discriminator" in model.nets:
        assert {"l_g_gan", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake"} <= set(history[-1])


def test_registry_knows_the_four_models():
    assert {"BaseSRModel", "ESRGAN", "RealESRNet", "RealESRGAN"} <= set(MODELS.names())


def test_ema_update_is_decay_times_shadow_plus_rest_times_param():
    paddle.seed(0)
    net = paddle.nn.Linear(3, 2)
    ema = BaseModel.make_ema(net, 0.9)
    shadow_before = params(ema.shadow)
    for p in net.parameters():
        p.set_value(p + 1.0)
    ema.update()
    now = params(net)
    for k, v in params(ema.shadow).items():
        np.testing.assert_allclose(v, 0.9 * shadow_before[k] + 0.1 * now[k], rtol=1e-6, atol=1e-7)


def test_ema_is_what_validation_and_weight_files_use():
    model = make_model("BaseSRModel", ema_decay=0.5)
    train(model, fixed_batch(32), 2)
    assert model.eval_generator() is model.ema.shadow
    weights = model.nets_state(for_weights=True)["generator"]
    for k, v in model.ema.state_dict().items():
        np.testing.assert_array_equal(weights[k].numpy(), v.numpy())
    raw = params(model.nets["generator"])
    assert any(not np.array_equal(raw[k], v.numpy()) for k, v in weights.items())


def test_two_accumulated_micro_batches_step_like_one_batch_of_two():
    batch = fixed_batch(32, n=2)
    whole = make_model("BaseSRModel")
    train(whole, batch, 1)
    accumulated = make_model("BaseSRModel")
    for k in range(2):
        accumulated.set_micro_step(k, 2)
        accumulated.setup_input({key: v[k:k + 1] for key, v in batch.items()})
        before = params(accumulated.nets["generator"])
        accumulated.train_iter(accumulated.optimizers)
        if k == 0:  # no optimizer step after the first micro-batch
            for key, v in params(accumulated.nets["generator"]).items():
                np.testing.assert_array_equal(v, before[key])
    a, b = params(whole.nets["generator"]), params(accumulated.nets["generator"])
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-6)
    assert any(not np.array_equal(a[k], v) for k, v in params(make_model("BaseSRModel").nets["generator"]).items())


def test_realesrnet_l1_targets_gt_usm_by_default_and_gt_when_switched_off():
    batch = fixed_batch(32)
    for use_usm, target in ((True, batch["gt_usm"]), (False, batch["gt"])):
        model = make_model("RealESRNet", l1_gt_usm=use_usm)
        with paddle.no_grad():
            out = model.nets["generator"](paddle.to_tensor(batch["lq"])).numpy()
        loss = train(model, batch, 1)[0]["l_pix"]
        assert loss == pytest.approx(float(np.abs(out - target).mean()), rel=1e-5)


def test_l1_gt_usm_without_gt_usm_in_the_data_names_the_key():
    model = make_model("RealESRNet")
    batch = fixed_batch(32)
    del batch["gt_usm"]
    with pytest.raises(ConfigError, match="l1_gt_usm"):
        train(model, batch, 1)


def test_realesrgan_generator_waits_for_net_d_init_iters():
    model = make_model("RealESRGAN", net_d_init_iters=2)
    g0, d0 = params(model.nets["generator"]), params(model.nets["discriminator"])
    history = train(model, fixed_batch(32), 2)
    for k, v in params(model.nets["generator"]).items():
        np.testing.assert_array_equal(v, g0[k])
    assert any(not np.array_equal(v, d0[k]) for k, v in params(model.nets["discriminator"]).items())
    assert "l_g_gan" not in history[-1] and "l_d_real" in history[-1]
    history = train(model, fixed_batch(32), 1, start=3)
    assert "l_g_gan" in history[0]
    assert any(not np.array_equal(v, g0[k]) for k, v in params(model.nets["generator"]).items())


def test_esrgan_generator_gan_loss_is_relativistic_average():
    model = make_model("ESRGAN")
    batch = fixed_batch(128)
    net_g, net_d = model.nets["generator"], model.nets["discriminator"]
    with paddle.no_grad():
        out = net_g(paddle.to_tensor(batch["lq"]))
        real = float(net_d(paddle.to_tensor(batch["gt"])).numpy().mean())
        fake = float(net_d(out).numpy().mean())

    def softplus(x):
        return float(np.log1p(np.exp(x)))

    # batch of one: mean(pred) = pred; BCE-with-logits(x, 0) = softplus(x), (x, 1) = softplus(-x)
    expected = 5e-3 * (softplus(real - fake) + softplus(-(fake - real))) / 2
    assert train(model, batch, 1)[0]["l_g_gan"] == pytest.approx(expected, rel=1e-3)


def test_pretrained_generator_loads_from_our_weight_file_and_sets_the_ema(tmp_path):
    donor = make_model("BaseSRModel")
    train(donor, fixed_batch(32), 1)
    path = str(tmp_path / "iter_1_weight.pdparams")
    save_weights(path, donor.nets_state(for_weights=True))
    model = make_model("BaseSRModel", pretrain_network_g=path, ema_decay=0.9)
    for k, v in params(donor.nets["generator"]).items():
        np.testing.assert_array_equal(params(model.nets["generator"])[k], v)
        np.testing.assert_array_equal(params(model.ema.shadow)[k], v)


def test_pretrained_generator_of_another_size_fails_strictly_in_one_line(tmp_path):
    path = str(tmp_path / "w.pdparams")
    save_weights(path, make_model("BaseSRModel").nets_state(for_weights=True))
    big_g = dict(TINY_G, nf=16)
    with pytest.raises(ConfigError, match=r"w\.pdparams \[generator\].*shape mismatch") as e:
        make_model("BaseSRModel", generator=big_g, pretrain_network_g=path)
    assert "\n" not in str(e.value)


def test_unknown_model_key_is_a_config_error_naming_the_model():
    with pytest.raises(ConfigError, match="BaseSRModel"):
        build_model(dict(MODEL_CFGS["BaseSRModel"][0], pixel_critrion={"name": "L1Loss"}))


def test_paddlegan_esrgan_psnr_config_builds_unchanged():
    cfg = load_config(os.path.join(ROOT, "configs", "esrgan_psnr_x4_div2k.yaml"), check_paths=False)
    assert cfg.model.to_static is False and cfg.min_max == "(0., 1.)"
    model = build_model(cfg.model)
    model.setup_optimizers(cfg.optimizer, cfg.lr_scheduler)
    assert list(model.optimizers) == ["optim"] and model.current_lr == pytest.approx(2e-4)
    assert model.nets["generator"].state_dict()["conv_first.weight"].shape == [64, 3, 3, 3]


def test_anime_psnr_config_loads_and_builds():
    cfg = load_config(os.path.join(ROOT, "configs", "esrgan_psnr_x4_anime.yaml"), check_paths=False)
    assert cfg.backend == "paddle" and sum(cfg.lr_scheduler.periods) == cfg.total_iters == 50000
    assert cfg.dataset.train.gt_folder == "data/animeSR/train" and cfg.dataset.test.lq_folder == "data/animeSR/test_X4"
    model = build_model(cfg.model)
    assert model.ema is None and list(model.nets) == ["generator"]


def test_esrgan_discriminator_step_takes_each_relativistic_references_mean_as_a_constant(monkeypatch):
    """The D step of BasicSR and torch_impl: gan(D(gt) - mean D(sr), real) / 2 with mean D(sr) a constant, then
    gan(D(sr) - mean D(gt), fake) / 2 with mean D(gt) a constant; the gradients equal that formula's."""
    model = make_model("ESRGAN")
    model.setup_input(fixed_batch(128, n=2))
    net_d, gan = model.nets["discriminator"], model.gan_criterion
    with paddle.no_grad():
        model.output = model.nets["generator"](model.lq)
    monkeypatch.setattr(model, "step", lambda net_name: False)  # keep the gradients, leave the weights
    model.discriminator_step(model.output.detach())
    got = {name: grad_of(p) for name, p in net_d.named_parameters()}
    for p in net_d.parameters():
        p.clear_gradient()
    real, fake = net_d(model.gt), net_d(model.output.detach())
    (gan(real - paddle.mean(fake).detach(), True, is_disc=True) * 0.5
     + gan(fake - paddle.mean(real).detach(), False, is_disc=True) * 0.5).backward()
    want = {name: grad_of(p) for name, p in net_d.named_parameters()}
    assert any(np.abs(g).max() > 0 for g in want.values())
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-7, err_msg=name)


def grad_of(param):
    return np.zeros(param.shape, np.float32) if param.grad is None else param.grad.numpy().copy()

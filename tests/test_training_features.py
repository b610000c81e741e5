"""traiNNer's training features (issue 17) on both backends, through the one training core: FreezeD, feature
matching, a pretrained discriminator, loss stages, WGAN-GP."""
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

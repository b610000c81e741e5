"""torch_impl.models: each model overfits one fixed batch, loss formulas, targets, EMA, micro-batches, weights."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common_data.errors import ConfigError, UserError
from torch_impl.models import MODELS, build_model
from torch_impl.models.base_model import BaseModel

G = {'name': 'RRDBNet', 'nf': 8, 'nb': 1, 'gc': 4}
ADAM = {'name': 'Adam', 'net_names': ['generator'], 'beta1': 0.9, 'beta2': 0.99}
ADAM_GD = {'optimG': dict(ADAM), 'optimD': dict(ADAM, net_names=['discriminator'])}
LR = {'name': 'MultiStepDecay', 'learning_rate': 2e-3, 'milestones': [1000], 'gamma': 0.5}
PERCEP = {'name': 'PerceptualLoss', 'layer_weights': {'0': 1.0}, 'weights_path': 'random',  # '0' = conv1_1
          'perceptual_weight': 0.1}


def smooth_batch(n=1, size=16, scale=4, seed=0):
    """A fixed batch: smooth random GT in [0, 1], LQ = its area-average downscale, gt_usm = a sharpened GT."""
    rng = np.random.default_rng(seed)
    base = rng.random((n, 3, size // 4, size // 4)).astype(np.float32)
    gt = F.interpolate(torch.from_numpy(base), size=(size, size), mode='bilinear', align_corners=False)
    lq = F.avg_pool2d(gt, scale)
    usm = torch.clamp(gt + 0.5 * (gt - F.avg_pool2d(gt, 3, 1, 1)), 0, 1)
    return {'lq': lq.numpy(), 'gt': gt.numpy(), 'gt_usm': usm.numpy(), 'lq_path': [f'img{i}.png' for i in range(n)]}


def make(cfg, optimizer=ADAM, seed=0):
    torch.manual_seed(seed)
    model = build_model(cfg)
    model.setup('cpu')
    model.setup_optimizers(optimizer, LR)
    return model


def train(model, batch, iters):
    history = []
    for it in range(1, iters + 1):
        model.current_iter = it
        model.setup_input(batch)
        model.train_iter(model.optimizers)
        model.end_iteration()
        history.append(model.get_current_losses())
    return history


def first_last(history, key):
    return history[0][key], np.mean([h[key] for h in history[-5:]])


def test_registry_holds_the_four_models():
    assert {'BaseSRModel', 'ESRGAN', 'RealESRNet', 'RealESRGAN'} <= set(MODELS.names())


def test_base_sr_model_overfits_one_batch():
    model = make({'name': 'BaseSRModel', 'generator': G, 'pixel_criterion': {'name': 'L1Loss'}})
    start, end = first_last(train(model, smooth_batch(), 50), 'l_pix')
    assert end <= 0.7 * start


def test_base_sr_model_l_pix_is_l1_of_the_generator_output_before_the_step():
    model = make({'name': 'BaseSRModel', 'generator': G, 'pixel_criterion': {'name': 'L1Loss'},
                  'edge_criterion': {'name': 'EdgeLoss'}})
    batch = smooth_batch()
    with torch.no_grad():
        out = model.net('generator')(torch.from_numpy(batch['lq']))
    expected = np.abs(out.numpy() - batch['gt']).mean()
    losses = train(model, batch, 1)[0]
    assert losses['l_pix'] == pytest.approx(expected, rel=1e-5)
    assert losses['l_edge'] > 0


def test_esrgan_overfits_and_reports_every_gan_term():
    cfg = {'name': 'ESRGAN', 'generator': G, 'discriminator': {'name': 'VGGDiscriminator128', 'num_feat': 4},
           'pixel_criterion': {'name': 'L1Loss'}, 'perceptual_criterion': PERCEP,
           'gan_criterion': {'name': 'GANLoss', 'gan_mode': 'vanilla', 'loss_weight': 5e-3}}
    history = train(make(cfg, ADAM_GD), smooth_batch(size=128), 50)
    assert set(history[0]) == {'l_pix', 'l_percep', 'l_g_gan', 'l_d_real', 'l_d_fake', 'out_d_real', 'out_d_fake'}
    start, end = first_last(history, 'l_pix')
    assert end <= 0.7 * start


def softplus(x):
    return np.logaddexp(0, x)


def test_esrgan_relativistic_losses_match_the_written_out_formula():
    """PaddleGAN's esrgan_model.py with vanilla GAN: BCE-with-logits = softplus(-x) for real, softplus(x) for fake."""
    cfg = {'name': 'ESRGAN', 'generator': G, 'discriminator': {'name': 'VGGDiscriminator128', 'num_feat': 4},
           'gan_criterion': {'name': 'GANLoss', 'gan_mode': 'vanilla', 'loss_weight': 1.0}}
    model = make(cfg, ADAM_GD)
    batch = smooth_batch(n=2, size=128)
    net_g, net_d = model.net('generator'), model.net('discriminator')
    with torch.no_grad():
        fake = net_g(torch.from_numpy(batch['lq']))
        real_pred = net_d(torch.from_numpy(batch['gt'])).numpy()
        fake_pred = net_d(fake).numpy()
    losses = train(model, batch, 1)[0]
    g = (softplus(real_pred - fake_pred.mean()).mean() + softplus(-(fake_pred - real_pred.mean())).mean()) / 2
    d_real = 0.5 * softplus(-(real_pred - fake_pred.mean())).mean()
    d_fake = 0.5 * softplus(fake_pred - real_pred.mean()).mean()
    assert losses['l_g_gan'] == pytest.approx(g, rel=1e-4)
    assert losses['l_d_real'] == pytest.approx(d_real, rel=1e-4)
    assert losses['l_d_fake'] == pytest.approx(d_fake, rel=1e-4)


def test_esrgan_gan_criterion_without_discriminator_is_a_config_error():
    with pytest.raises(ConfigError, match='model.discriminator'):
        build_model({'name': 'ESRGAN', 'generator': G, 'gan_criterion': {'name': 'GANLoss', 'gan_mode': 'vanilla'}})


@pytest.mark.parametrize('use_usm', [True, False])
def test_realesrnet_pixel_target_follows_l1_gt_usm(use_usm):
    model = make({'name': 'RealESRNet', 'generator': G, 'pixel_criterion': {'name': 'L1Loss'},
                  'l1_gt_usm': use_usm})
    batch = smooth_batch()
    with torch.no_grad():
        out = model.net('generator')(torch.from_numpy(batch['lq'])).numpy()
    target = batch['gt_usm'] if use_usm else batch['gt']
    assert train(model, batch, 1)[0]['l_pix'] == pytest.approx(np.abs(out - target).mean(), rel=1e-5)


def test_realesrnet_overfits_and_keeps_an_ema_generator_with_decay_0999():
    model = make({'name': 'RealESRNet', 'generator': G, 'pixel_criterion': {'name': 'L1Loss'}})
    assert model.ema is not None and model.ema.decay == 0.999
    start, end = first_last(train(model, smooth_batch(), 50), 'l_pix')
    assert end <= 0.7 * start
    ema_w = model.ema.state_dict()['conv_first.weight']
    assert not torch.equal(ema_w, model.net('generator').state_dict()['conv_first.weight'])
    assert torch.equal(model.nets_state(for_weights=True)['generator']['conv_first.weight'], ema_w)


def realesrgan_cfg(**extra):
    return dict({'name': 'RealESRGAN', 'generator': G,
                 'discriminator': {'name': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 4},
                 'pixel_criterion': {'name': 'L1Loss'}, 'perceptual_criterion': PERCEP,
                 'gan_criterion': {'name': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 0.1}}, **extra)


def test_realesrgan_overfits_with_plain_gan_terms():
    history = train(make(realesrgan_cfg(), ADAM_GD), smooth_batch(), 50)
    assert {'l_pix', 'l_percep', 'l_g_gan', 'l_d_real', 'l_d_fake', 'out_d_real', 'out_d_fake'} <= set(history[0])
    start, end = first_last(history, 'l_pix')
    assert end <= 0.7 * start


def test_realesrgan_gan_loss_is_plain_and_uses_gt_for_the_discriminator_by_default():
    model = make(realesrgan_cfg(perceptual_criterion=None), ADAM_GD)
    batch = smooth_batch()
    batch['gt_usm'] = np.clip(batch['gt'] * 0.5, 0, 1)  # very different from gt: wrong target would show
    net_g, net_d = model.net('generator'), model.net('discriminator')
    with torch.no_grad():
        fake = net_g(torch.from_numpy(batch['lq']))
        # spectral norm's power iteration changes u in train mode: read the predictions from a copy
        import copy
        d = copy.deepcopy(net_d)
        fake_pred = d(fake).numpy()
    losses = train(model, batch, 1)[0]
    assert losses['l_g_gan'] == pytest.approx(0.1 * softplus(-fake_pred).mean(), rel=1e-4)
    assert losses['l_pix'] == pytest.approx(np.abs(fake.numpy() - batch['gt_usm']).mean(), rel=1e-5)


def test_realesrgan_net_d_init_iters_freezes_the_generator_but_trains_the_discriminator():
    model = make(realesrgan_cfg(net_d_init_iters=2, ema_decay=0), ADAM_GD)
    g0 = {k: v.clone() for k, v in model.net('generator').state_dict().items()}
    d0 = {k: v.clone() for k, v in model.net('discriminator').state_dict().items()}
    history = train(model, smooth_batch(), 2)
    assert all('l_g_gan' not in h for h in history)
    assert all(torch.equal(v, model.net('generator').state_dict()[k]) for k, v in g0.items())
    assert not torch.equal(d0['conv0.weight'], model.net('discriminator').state_dict()['conv0.weight'])
    train_at = model.current_iter + 1
    model.current_iter = train_at
    model.setup_input(smooth_batch())
    model.train_iter()
    assert 'l_g_gan' in model.get_current_losses()
    assert not torch.equal(g0['conv_first.weight'], model.net('generator').state_dict()['conv_first.weight'])


def test_ema_update_is_decay_times_shadow_plus_one_minus_decay_times_param():
    net = torch.nn.Linear(3, 2)
    ema = BaseModel.make_ema(net, 0.9)
    shadow0 = ema.shadow.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update()
    assert torch.allclose(ema.shadow.weight, 0.9 * shadow0 + 0.1 * net.weight.detach())
    assert not ema.shadow.weight.requires_grad and not ema.shadow.training


def test_two_micro_batches_equal_one_double_batch():
    """accumulate_steps=2 on halves gives the same weights as one step on the whole batch (mean L1, no BN)."""
    batch = smooth_batch(n=2)
    halves = [{k: v[i:i + 1] for k, v in batch.items()} for i in range(2)]
    cfg = {'name': 'BaseSRModel', 'generator': G, 'pixel_criterion': {'name': 'L1Loss'}}
    whole = make(cfg)
    train(whole, batch, 1)
    micro = make(cfg)
    for k, half in enumerate(halves):
        micro.set_micro_step(k, 2)
        micro.setup_input(half)
        micro.train_iter()
    micro.end_iteration()
    for k, v in whole.net('generator').state_dict().items():
        assert torch.allclose(v, micro.net('generator').state_dict()[k], atol=1e-6), k


def test_pretrain_network_g_loads_basicsr_params_ema(tmp_path):
    torch.manual_seed(1)
    src = build_model({'name': 'BaseSRModel', 'generator': G})
    path = tmp_path / 'net_g.pth'
    torch.save({'params': {}, 'params_ema': src.net('generator').state_dict()}, path)
    model = build_model({'name': 'RealESRNet', 'generator': G, 'pretrain_network_g': str(path)})
    model.setup('cpu')
    for k, v in src.net('generator').state_dict().items():
        assert torch.equal(v, model.net('generator').state_dict()[k])
        assert torch.equal(v, model.ema.state_dict()[k])


def test_pretrain_network_g_with_paddlegan_names_says_to_convert(tmp_path):
    src = build_model({'name': 'BaseSRModel', 'generator': G}).net('generator').state_dict()
    renamed = {k.replace('body.', 'RRDB_trunk.').replace('conv_body', 'trunk_conv'): v for k, v in src.items()}
    path = tmp_path / 'ppgan_names.pth'
    torch.save({'generator': renamed}, path)
    with pytest.raises(UserError, match='convert_weights'):
        build_model({'name': 'BaseSRModel', 'generator': G, 'pretrain_network_g': str(path)})


def test_pretrain_network_g_pdparams_is_refused_in_one_line(tmp_path):
    path = tmp_path / 'g.pdparams'
    path.write_bytes(b'not really')
    with pytest.raises(UserError, match=r'g\.pdparams is a Paddle file'):
        build_model({'name': 'BaseSRModel', 'generator': G, 'pretrain_network_g': str(path)})


def test_test_iter_feeds_uint8_hwc_images_to_the_metrics():
    model = make({'name': 'BaseSRModel', 'generator': G, 'pixel_criterion': {'name': 'L1Loss'}})
    seen = []

    class Recorder:  # PaddleGAN's metric protocol: lists of predictions and ground truths
        def update(self, preds, gts):
            seen.extend((pred.dtype, pred.shape, gt.shape) for pred, gt in zip(preds, gts))

    model.setup_input(smooth_batch(n=2))
    model.test_iter({'rec': Recorder()})
    assert seen == [(np.uint8, (16, 16, 3), (16, 16, 3))] * 2
    assert model.net('generator').training  # back in train mode

"""Real-ESRGAN's two stages: RealESRNet (L1 only) and RealESRGAN (U-Net discriminator, L1 + perceptual + GAN).

In Real-ESRGAN the degradations run on the GPU inside the model; here RealESRGANDataset makes them in the data
workers, so batches arrive with ``lq``, ``gt`` and ``gt_usm`` (the USM-sharpened GT) ready.
"""
from common_data.training.loss_targets import check_realesrgan_options
from common_data.training.recipes import RealESRGANRecipe, RealESRNetRecipe

from . import MODELS
from .esrgan_model import ESRGAN
from .sr_model import BaseSRModel


@MODELS.register()
class RealESRNet(RealESRNetRecipe, BaseSRModel):
    """``l_pix = pixel_criterion(G(lq), gt_usm if l1_gt_usm else gt)``; EMA 0.999 by default (Real-ESRNet x4plus).

    ``l1_gt_usm`` with a batch without ``gt_usm`` (e.g. from SRDataset) is an error (common_data.training.loss_targets).
    """

    def __init__(self, generator, pixel_criterion=None, edge_criterion=None, l1_gt_usm=True, ema_decay=0.999,
                 pretrain_network_g=None, strict_load_g=True, param_key_g=None, to_static=None, loss_stages=None):
        super().__init__(generator, pixel_criterion, edge_criterion, ema_decay, pretrain_network_g, strict_load_g,
                         param_key_g, to_static, loss_stages)
        self.l1_gt_usm = bool(l1_gt_usm)


@MODELS.register()
class RealESRGAN(RealESRGANRecipe, ESRGAN):
    """Real-ESRGAN's GAN stage (realesrgan_model.py): plain (not relativistic) GAN loss from a U-Net discriminator.

    ``l1_gt_usm`` / ``percep_gt_usm`` / ``gan_gt_usm`` (default true / true / false) pick the sharpened GT per loss.
    The generator is updated only when ``iter % net_d_iters == 0 and iter > net_d_init_iters``; the
    discriminator every iteration. EMA 0.999 by default.
    """

    def __init__(self, generator, discriminator=None, pixel_criterion=None, perceptual_criterion=None,
                 gan_criterion=None, edge_criterion=None, l1_gt_usm=True, percep_gt_usm=True, gan_gt_usm=False,
                 net_d_iters=1, net_d_init_iters=0, ema_decay=0.999, pretrain_network_g=None, strict_load_g=True,
                 param_key_g=None, pretrain_network_d=None, strict_load_d=True, param_key_d=None, to_static=None,
                 freeze_d_layers=None, feature_matching_weight=0.0, loss_stages=None):
        check_realesrgan_options(gan_criterion, net_d_iters)
        super().__init__(generator, discriminator, pixel_criterion, perceptual_criterion, gan_criterion,
                         edge_criterion, False, ema_decay, pretrain_network_g, strict_load_g, param_key_g,
                         pretrain_network_d, strict_load_d, param_key_d, to_static, freeze_d_layers,
                         feature_matching_weight, loss_stages)
        self.l1_gt_usm, self.percep_gt_usm, self.gan_gt_usm = bool(l1_gt_usm), bool(percep_gt_usm), bool(gan_gt_usm)
        self.net_d_iters, self.net_d_init_iters = int(net_d_iters), int(net_d_init_iters)

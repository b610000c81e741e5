"""The loss recipes of the four training models, written once for both backends.

Which terms, which targets, when G and D step: BaseSRModel (PaddleGAN's PSNR stage), ESRGAN (PaddleGAN / BasicSR's
GAN stage), RealESRNet and RealESRGAN (Real-ESRGAN's two stages). Each recipe is a whole model over
common_data's ModelCore (constructor included); a backend registers ``class X(XRecipe, BaseModel)``, its BaseModel
supplying the framework's primitives (common_data/training/model_core.py). Tensors are only used through methods
paddle and torch share (``mean``, ``detach``, ``clone``, arithmetic).

Decisions (BasicSR's order where PaddleGAN's differed):
  * the discriminator learns from real then fake, each its own forward and backward (DDP syncs each);
  * in an iteration where only D learns (RealESRGAN's ``net_d_iters`` / ``net_d_init_iters``), G runs without
    gradients;
  * a USM-sharpened target requested without ``gt_usm`` in the batch is an error (common_data.training.loss_targets);
  * the edge loss compares against the pixel loss's target;
  * with ``loss_stages`` (common_data.training.loss_stages) a term is computed only in the stages that list it, and
    the discriminator trains only in stages with ``gan``.
"""
from ..errors import ConfigError, UserError
from .loss_targets import check_realesrgan_options, usm_or_gt
from .model_core import ModelCore
from .freeze_d import frozen_blocks, frozen_parameter_names
from .loss_stages import LossStages
from .gan_forms import feature_matching_loss, relativistic_d_fake, relativistic_d_real, relativistic_g_loss


class SRRecipe(ModelCore):
    """BaseSRModel (PaddleGAN's PSNR stage): ``l_pix = pixel_criterion(G(lq), gt)`` (+ ``l_edge`` against the same
    target), one optimizer for the generator.

    ``pretrain_network_g`` / ``strict_load_g`` / ``param_key_g`` load starting weights (BasicSR) before the EMA copy
    is made (``ema_decay`` > 0 keeps an EMA generator for validation and weight files). ``to_static`` (PaddleGAN's
    key: true / false / auto) lets the Paddle backend train through its static-graph oneDNN step
    (paddle_impl/engine/static_step.py), which trains a pixel_criterion alone; PyTorch trains eagerly either way.
    """

    def __init__(self, generator, pixel_criterion=None, edge_criterion=None, ema_decay=0.0, pretrain_network_g=None,
                 strict_load_g=True, param_key_g=None, to_static=None, loss_stages=None):
        super().__init__(ema_decay, to_static)
        self.build_net("generator", generator, "model.generator")
        self.pixel_criterion = self.build_criterion(pixel_criterion, "model.pixel_criterion")
        self.edge_criterion = self.build_criterion(edge_criterion, "model.edge_criterion")
        if self.to_static is True and (edge_criterion or not pixel_criterion):
            raise ConfigError("model.to_static: the static-graph step trains a pixel_criterion alone; remove "
                              "model.edge_criterion or set -o model.to_static=false")
        if pretrain_network_g:
            self.load_pretrained("generator", pretrain_network_g, strict_load_g, param_key_g,
                                 "model.pretrain_network_g")
        self.setup_ema()
        self.set_loss_stages(loss_stages)

    def require(self, attr, example):
        if getattr(self, attr, None) is None:
            raise ConfigError(f"model.{attr} is missing for {type(self).__name__}: add e.g. {example}")

    # ---- loss stages (common_data.training.loss_stages) -----------------------------------------------------------
    def configured_terms(self):
        """The loss terms this model has criteria for, by loss-stage name."""
        terms = {"pixel": "pixel_criterion", "edge": "edge_criterion", "perceptual": "perceptual_criterion",
                 "gan": "gan_criterion"}
        found = [term for term, attr in terms.items() if getattr(self, attr, None) is not None]
        return found + (["feature_matching"] if getattr(self, "feature_matching_weight", 0) else [])

    def set_loss_stages(self, spec):
        """``model.loss_stages``; called at the end of the model's constructor, once every criterion is built."""
        self.loss_stages = LossStages.from_config(spec, self.configured_terms())
        self.loss_stage, self.stage_terms = None, None
        if self.loss_stages is not None and getattr(self, "to_static", False) is True:
            raise ConfigError("model.loss_stages: the static-graph step (to_static) trains a pixel_criterion alone; "
                              "remove loss_stages or set -o model.to_static=false")

    def enter_stage(self):
        """At each micro-batch: the stage of ``current_iter``; a change is logged (rank 0's log, VisualDL's
        loss_stage scalar through the trainer)."""
        if getattr(self, "loss_stages", None) is None:
            return
        index = self.loss_stages.index_at(self.current_iter)
        if index != self.loss_stage:
            self.loss_stage, self.stage_terms = index, self.loss_stages.terms(index)
            self.log(f"iteration {self.current_iter}: {self.loss_stages.describe(index)}")

    def term_on(self, term):
        """Whether loss term ``term`` is active in this iteration (always, without loss_stages)."""
        return getattr(self, "loss_stages", None) is None or term in self.stage_terms

    def pixel_target(self):
        return self.gt

    def generator_losses(self, output):
        """Pixel (+ edge) losses of ``output``; returns the total and records each in ``self.losses``."""
        total = 0.0
        if self.pixel_criterion is not None and self.term_on("pixel"):
            self.losses["l_pix"] = self.pixel_criterion(output, self.pixel_target())
            total = total + self.losses["l_pix"]
        if self.edge_criterion is not None and self.term_on("edge"):
            self.losses["l_edge"] = self.edge_criterion(output, self.pixel_target())
            total = total + self.losses["l_edge"]
        return total

    def train_iter(self, optimizers=None):
        self.require("pixel_criterion", "{name: L1Loss}")
        self.enter_stage()
        self.losses.clear()
        self.zero_grad("generator")
        with self.autocast():
            self.output = self.nets["generator"](self.lq)
            total = self.generator_losses(self.output)
        self.visual_items["output"] = self.output
        self.backward(total)
        self.step("generator")


class ESRGANRecipe(SRRecipe):
    """Generator step (pixel + perceptual + GAN), then discriminator step, every iteration.

    ``relativistic: true`` (ESRGAN's default): the relativistic-average form (common_data.training.gan_forms);
    ``false``: the plain GAN form (BasicSR's SRGANModel, Real-ESRGAN). Without ``gan_criterion`` the generator
    trains alone. ``feature_matching_weight`` > 0 adds ``l_g_fm`` (common_data.training.gan_forms); a GANLoss with
    ``gp_weight`` > 0 (gan_mode wgangp: 10) adds the WGAN-GP penalty ``l_d_gp`` to the discriminator's loss. Loss keys:
    l_pix, l_edge, l_percep, l_style, l_g_gan, l_g_fm, l_d_real, l_d_fake, l_d_gp, out_d_real, out_d_fake.
    ``freeze_d_layers`` (FreezeD) keeps the discriminator's first blocks fixed; ``pretrain_network_d`` /
    ``strict_load_d`` / ``param_key_d`` load its starting weights.
    """

    def __init__(self, generator, discriminator=None, pixel_criterion=None, perceptual_criterion=None,
                 gan_criterion=None, edge_criterion=None, relativistic=True, ema_decay=0.0, pretrain_network_g=None,
                 strict_load_g=True, param_key_g=None, pretrain_network_d=None, strict_load_d=True, param_key_d=None,
                 to_static=None, freeze_d_layers=None, feature_matching_weight=0.0, loss_stages=None):
        super().__init__(generator, pixel_criterion, edge_criterion, ema_decay, pretrain_network_g, strict_load_g,
                         param_key_g, to_static)
        if gan_criterion and not discriminator:
            raise ConfigError("model.discriminator is missing: gan_criterion needs one, e.g. "
                              "{name: VGGDiscriminator128, in_channels: 3, num_feat: 64}")
        if discriminator:
            self.build_net("discriminator", discriminator, "model.discriminator")
            if pretrain_network_d:
                self.load_pretrained("discriminator", pretrain_network_d, strict_load_d, param_key_d,
                                     "model.pretrain_network_d")
        self.perceptual_criterion = self.build_criterion(perceptual_criterion, "model.perceptual_criterion")
        self.gan_criterion = self.build_criterion(gan_criterion, "model.gan_criterion")
        self.relativistic = bool(relativistic)
        self.freeze_discriminator(freeze_d_layers)
        self.set_feature_matching(feature_matching_weight)
        self.set_loss_stages(loss_stages)

    def freeze_discriminator(self, spec):
        """FreezeD (``model.freeze_d_layers``: K or block names, common_data.training.freeze_d): the chosen blocks'
        parameters leave training; called by the constructor after the pretrained discriminator is loaded."""
        self.frozen_d_blocks = []
        if not spec:
            return
        if "discriminator" not in self.nets:
            raise ConfigError("model.freeze_d_layers needs a model.discriminator (and a gan_criterion to train it)")
        net_d = self.net("discriminator")
        blocks = net_d.blocks()
        self.frozen_d_blocks = frozen_blocks(blocks, spec, type(net_d).__name__)
        names = [name for name, _ in net_d.named_parameters()]
        self.freeze_parameters("discriminator", frozen_parameter_names(names, blocks, self.frozen_d_blocks))

    def percep_target(self):
        return self.gt

    def gan_target(self):
        return self.gt

    def update_generator(self):
        return True

    def generator_losses(self, output):
        total = super().generator_losses(output)
        if self.perceptual_criterion is not None and self.term_on("perceptual"):
            l_percep, l_style = self.perceptual_criterion(output, self.percep_target())
            if l_percep is not None:
                self.losses["l_percep"] = l_percep
                total = total + l_percep
            if l_style is not None:
                self.losses["l_style"] = l_style
                total = total + l_style
        gan, fm = self.gan_on(), self.fm_on()
        if gan or fm:
            net_d = self.net("discriminator")  # frozen during the generator's step
            if (gan and self.relativistic) or fm:
                with self.no_grad():
                    real_pred, real_feats = self.discriminate(net_d, self.gan_target(), fm)
            fake_pred, fake_feats = self.discriminate(net_d, output, fm)
            if gan:
                if self.relativistic:
                    l_g_gan = relativistic_g_loss(self.gan_criterion, real_pred, fake_pred)
                else:
                    l_g_gan = self.gan_criterion(fake_pred, True, is_disc=False)
                self.losses["l_g_gan"] = l_g_gan
                total = total + l_g_gan
            if fm:
                l_g_fm = feature_matching_loss(real_feats, fake_feats) * self.feature_matching_weight
                self.losses["l_g_fm"] = l_g_fm
                total = total + l_g_fm
        return total

    def gan_on(self):
        """The adversarial terms (G's l_g_gan, D's training) are active in this iteration."""
        return self.gan_criterion is not None and self.term_on("gan")

    def fm_on(self):
        """Feature matching (l_g_fm) is active in this iteration."""
        return (self.gan_criterion is not None and self.feature_matching_weight > 0
                and self.term_on("feature_matching"))

    @staticmethod
    def discriminate(net_d, image, with_feats):
        """(logits, intermediate features or None) of the discriminator on ``image``."""
        return net_d(image, return_feats=True) if with_feats else (net_d(image), None)

    def set_feature_matching(self, weight):
        """``model.feature_matching_weight`` (>= 0; 0 = off): the generator also gets ``weight`` times the L1
        between the discriminator's intermediate features of its output and of the real image (``l_g_fm``)."""
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ConfigError(f"model.feature_matching_weight must be a number >= 0 (0 turns it off), got {weight!r}")
        if weight and self.gan_criterion is None:
            raise ConfigError("model.feature_matching_weight needs a gan_criterion and a discriminator (whose "
                              "features it compares); add them or set it to 0")
        self.feature_matching_weight = float(weight)

    def train_iter(self, optimizers=None):
        if self.pixel_criterion is None and self.perceptual_criterion is None and self.gan_criterion is None:
            raise ConfigError(f"model: {type(self).__name__} needs at least one of pixel_criterion, "
                              f"perceptual_criterion, gan_criterion")
        self.enter_stage()
        self.losses.clear()
        has_d = self.gan_on()  # the discriminator trains in this iteration
        if has_d or self.fm_on():
            self.set_requires_grad(self.net("discriminator"), False)
        if self.update_generator():
            self.zero_grad("generator")
            with self.autocast():
                self.output = self.nets["generator"](self.lq)
                total = self.generator_losses(self.output)
            self.backward(total)
            self.step("generator")
        else:  # only the discriminator learns in this iteration
            with self.no_grad(), self.autocast():
                self.output = self.net("generator")(self.lq)
        self.visual_items["output"] = self.output
        if has_d:
            self.set_requires_grad(self.net("discriminator"), True)
            self.discriminator_step(self.output.detach())

    def discriminator_step(self, fake):
        """Real then fake, each its own forward + backward."""
        net_d, gan, real = self.nets["discriminator"], self.gan_criterion, self.gan_target()
        self.zero_grad("discriminator")
        with self.autocast():
            if self.relativistic:
                with self.no_grad():
                    fake_ref = self.net("discriminator")(fake)
                real_pred = net_d(real)
                l_d_real = relativistic_d_real(gan, real_pred, fake_ref)
            else:
                real_pred = net_d(real)
                l_d_real = gan(real_pred, True, is_disc=True)
        self.backward(l_d_real)
        with self.autocast():
            fake_pred = net_d(fake.clone())
            if self.relativistic:
                l_d_fake = relativistic_d_fake(gan, fake_pred, real_pred)
            else:
                l_d_fake = gan(fake_pred, False, is_disc=True)
        self.backward(l_d_fake)
        if getattr(gan, "gp_weight", 0) > 0:
            self.losses["l_d_gp"] = self.gradient_penalty_step(real, fake)
        self.step("discriminator")
        self.losses["l_d_real"] = l_d_real
        self.losses["l_d_fake"] = l_d_fake
        self.losses["out_d_real"] = self.fp32(real_pred.detach()).mean()
        self.losses["out_d_fake"] = self.fp32(fake_pred.detach()).mean()


    def gradient_penalty_step(self, real, fake):
        """WGAN-GP (GANLoss ``gp_weight``): the weighted penalty at random mixes of ``real`` and ``fake``, in float32,
        its own backward into the discriminator's gradients; returns it (``l_d_gp``)."""
        net_d = self.net("discriminator")
        if self.nets["discriminator"] is not net_d:
            raise UserError("model.gan_criterion.gp_weight: the gradient penalty trains in one process only (its "
                            "input gradient does not pass the multi-process wrapper); train with one process or "
                            "set gan_mode: wgan and gp_weight: 0")
        l_d_gp = self.gan_criterion.penalty(net_d, self.fp32(real), self.fp32(fake))
        self.backward(l_d_gp)
        return l_d_gp


class RealESRNetRecipe(SRRecipe):
    """``l_pix = pixel_criterion(G(lq), gt_usm if l1_gt_usm else gt)``; EMA 0.999 by default (Real-ESRNet x4plus).

    Unlike Real-ESRGAN, the second-order degradation runs in the dataset workers (common_data's
    RealESRGANDataset), so batches arrive with ``lq``, ``gt`` and ``gt_usm`` ready and there is no training-pair pool.
    """

    def __init__(self, generator, pixel_criterion=None, edge_criterion=None, l1_gt_usm=True, ema_decay=0.999,
                 pretrain_network_g=None, strict_load_g=True, param_key_g=None, to_static=None, loss_stages=None):
        super().__init__(generator, pixel_criterion, edge_criterion, ema_decay, pretrain_network_g, strict_load_g,
                         param_key_g, to_static, loss_stages)
        self.l1_gt_usm = bool(l1_gt_usm)

    def pixel_target(self):
        return usm_or_gt(self.gt, self.gt_usm, self.l1_gt_usm, "l1_gt_usm")


class RealESRGANRecipe(ESRGANRecipe):
    """Real-ESRGAN's GAN stage: plain GAN form; ``l1_gt_usm`` / ``percep_gt_usm`` / ``gan_gt_usm`` pick the
    sharpened GT per loss (default true / true / false); G steps only when ``iter % net_d_iters == 0 and iter >
    net_d_init_iters``, D every iteration; the EMA (default decay 0.999) updates every iteration."""

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

    def pixel_target(self):
        return usm_or_gt(self.gt, self.gt_usm, self.l1_gt_usm, "l1_gt_usm")

    def percep_target(self):
        return usm_or_gt(self.gt, self.gt_usm, self.percep_gt_usm, "percep_gt_usm")

    def gan_target(self):
        return usm_or_gt(self.gt, self.gt_usm, self.gan_gt_usm, "gan_gt_usm")

    def update_generator(self):
        return self.current_iter % self.net_d_iters == 0 and self.current_iter > self.net_d_init_iters


MODEL_RECIPES = {"BaseSRModel": SRRecipe, "ESRGAN": ESRGANRecipe, "RealESRNet": RealESRNetRecipe,
                 "RealESRGAN": RealESRGANRecipe}


def model_registry(base_model, module):
    """The registry of the four training models over a backend's ``base_model``: each is
    ``class Name(Recipe, base_model)``, named in ``module``; a config's ``model.name`` picks one."""
    from ..registry import Registry
    registry = Registry("model")
    for name, recipe in MODEL_RECIPES.items():
        registry.register(type(name, (recipe, base_model), {"__doc__": recipe.__doc__, "__module__": module}))
    return registry

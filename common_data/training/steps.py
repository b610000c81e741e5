"""How one micro-batch trains: the model's own eager ``train_iter``, unless the backend offers a faster strategy.

A step strategy owns what it needs beyond the model (a compiled program and its optimizer state): the core asks it
to train, for the state to checkpoint, to restore that state and for the current visuals. Paddle's static-graph
oneDNN step is one (paddle_impl/engine/static_step.py); ``EagerStep`` is the default on both backends.

``model.to_static`` (PaddleGAN's key) is true, false or ``auto``: auto takes the static step wherever it trains the
config exactly (``static_step_fits``) and the backend can run it (Paddle on a CPU with oneDNN), else eager.
"""
from typing import Optional, Tuple

STATIC_MODELS = ("BaseSRModel", "RealESRNet")
AUTO = "auto"


def to_static_choice(model_cfg) -> object:
    """``model.to_static`` normalised: True, False or "auto" (absent -> False, PaddleGAN's default)."""
    value = (model_cfg or {}).get("to_static", False)
    if isinstance(value, str) and value.lower() == AUTO:
        return AUTO
    return bool(value)


def static_step_fits(cfg) -> Tuple[bool, Optional[str]]:
    """Whether the static pixel-loss step trains this config as eager training would; -> (fits, why not)."""
    model = cfg.get("model") or {}
    generator = model.get("generator") or {}
    if model.get("name") not in STATIC_MODELS:
        return False, f"{model.get('name')} trains more than a pixel loss"
    if generator.get("name") != "RRDBNet":
        return False, f"the static step is built for RRDBNet, not {generator.get('name')}"
    if not model.get("pixel_criterion") or model.get("edge_criterion") or model.get("loss_stages"):
        return False, "it trains a pixel_criterion alone (no edge_criterion, no loss_stages)"
    if int(cfg.get("accumulate_steps") or 1) > 1:
        return False, "it does not combine with accumulate_steps > 1"
    return True, None


class EagerStep:
    """``model.train_iter()`` and the model's own checkpoint state and visuals."""

    name = "eager"
    why = ""  # the adapter's reason for this strategy, logged once (to_static: auto)

    def train_iter(self, model):
        model.train_iter()

    def training_state(self, model):
        return model.training_state()

    def load_training_state(self, model, state, source):
        model.load_training_state(state, source)

    def visuals(self, model):
        return model.get_current_visuals()

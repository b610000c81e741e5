"""How one micro-batch trains: the model's own eager ``train_iter``, unless the backend offers a faster strategy.

A step strategy owns what it needs beyond the model (a compiled program and its optimizer state): the core asks it
to train, for the state to checkpoint, to restore that state and for the current visuals. Paddle's static-graph
oneDNN step is one (paddle_impl/engine/static_step.py); ``EagerStep`` is the default on both backends.
"""


class EagerStep:
    """``model.train_iter()`` and the model's own checkpoint state and visuals."""

    name = "eager"

    def train_iter(self, model):
        model.train_iter()

    def training_state(self, model):
        return model.training_state()

    def load_training_state(self, model, state, source):
        model.load_training_state(state, source)

    def visuals(self, model):
        return model.get_current_visuals()

"""Exponential moving average of a network's weights (BasicSR's ``net_g_ema``), for both backends."""
import copy


class ModelEMA:
    """A shadow copy of ``net``: ``update()`` sets each parameter to ``decay * shadow + (1 - decay) * param``.

    Buffers (none in RRDBNet) are copied as they are. The shadow is kept in eval mode and is what validation
    uses and what the weight files hold. ``net`` is the bare network (not a data-parallel wrapper); ``ops`` is the
    backend's BaseModel, whose primitives do the framework's part (``set_trainable``, ``load_state``,
    ``no_grad``, ``blend``, ``assign``).
    """

    def __init__(self, net, decay=0.999, ops=None):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay, self.net, self.ops = float(decay), net, ops
        self.shadow = copy.deepcopy(net)
        self.shadow.eval()
        for p in self.shadow.parameters():
            ops.set_trainable(p, False)

    def update(self, decay=None):
        d = self.decay if decay is None else decay
        with self.ops.no_grad():
            params = dict(self.net.named_parameters())
            for name, p in self.shadow.named_parameters():
                self.ops.blend(p, params[name], d)
            buffers = dict(self.net.named_buffers())
            for name, b in self.shadow.named_buffers():
                self.ops.assign(b, buffers[name])

    def copy_from_net(self):
        """Make the shadow equal to the net (after loading weights into it)."""
        self.ops.load_state(self.shadow, self.net.state_dict())

    def state_dict(self):
        return self.shadow.state_dict()

    def set_state_dict(self, state):
        self.ops.load_state(self.shadow, state)

    load_state_dict = set_state_dict

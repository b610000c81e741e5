"""Exponential moving average of a network's weights (BasicSR's ``net_g_ema``)."""
import copy

import torch


class ModelEMA:
    """A shadow copy of ``net``: ``update()`` sets each parameter to ``decay * shadow + (1 - decay) * param``.

    Buffers (none in RRDBNet) are copied as they are. The shadow is kept in eval mode and is what validation
    uses and what the weight files hold. ``net`` is the bare network (not a data-parallel wrapper).
    """

    def __init__(self, net, decay=0.999):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.net = net
        self.shadow = copy.deepcopy(net)
        self.shadow.eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, decay=None):
        d = self.decay if decay is None else decay
        params = dict(self.net.named_parameters())
        for name, p in self.shadow.named_parameters():
            p.mul_(d).add_(params[name].detach(), alpha=1.0 - d)
        buffers = dict(self.net.named_buffers())
        for name, b in self.shadow.named_buffers():
            b.copy_(buffers[name])

    def copy_from_net(self):
        """Make the shadow equal to the net (after loading pretrained weights)."""
        self.shadow.load_state_dict(self.net.state_dict())

    def state_dict(self):
        return self.shadow.state_dict()

    def set_state_dict(self, state):
        self.shadow.load_state_dict(state)

    load_state_dict = set_state_dict

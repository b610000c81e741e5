"""Network architectures for the PyTorch backend; a config's ``name:`` (e.g. ``RRDBNet``) is resolved through
``ARCHS``."""
from common_data.registry import Registry

ARCHS = Registry("arch")

from . import rrdbnet_arch, srvgg_arch, discriminator_arch, vgg_arch  # noqa: E402,F401  (they register themselves)


def build_arch(cfg, where=None):
    """Build a network from a config mapping such as ``{'name': 'RRDBNet', 'nf': 64, ...}``; ``where`` names the
    config key in errors."""
    return ARCHS.build(cfg, where)

"""FreezeD (Mo et al. 2020): the first K blocks of the discriminator keep their weights while fine-tuning a GAN.

``model.freeze_d_layers`` is K (an int: the first K blocks in forward order) or a list of block names. A
discriminator lists its blocks with ``blocks()`` -> ``[(block name, [parameter-name prefixes]), ...]`` in forward
order (VGGDiscriminator128: conv0_0, conv0_1 (+ bn0_1), ..., conv4_1 (+ bn4_1), linear1, linear2;
UNetDiscriminatorSN: conv0 .. conv9). Frozen parameters take no gradient and are left out of the optimizer (no
optimizer state); BatchNorm running statistics of a frozen block still follow the batches in train mode.
"""
from common_data.errors import ConfigError

WHERE = "model.freeze_d_layers"


def frozen_blocks(blocks, spec, arch="discriminator"):
    """The names of the blocks ``spec`` (K or a list of names) freezes, in forward order; ConfigError in one line
    for a bad spec, an unknown name, or every block frozen (nothing left to train)."""
    names = [name for name, _ in blocks]
    if spec is None or spec is False or spec == 0 or spec == []:
        return []
    if isinstance(spec, bool) or not isinstance(spec, (int, list, tuple)):
        raise ConfigError(f"{WHERE} must be a number of blocks or a list of block names of {arch} "
                          f"({', '.join(names)}), got {spec!r}")
    if isinstance(spec, int):
        if not 0 <= spec < len(names):
            raise ConfigError(f"{WHERE}: {spec} must be in 0..{len(names) - 1} ({arch} has {len(names)} blocks: "
                              f"{', '.join(names)}; the last ones must stay trainable)")
        return names[:spec]
    unknown = [s for s in spec if s not in names]
    if unknown:
        raise ConfigError(f"{WHERE}: no block {unknown[0]!r} in {arch}; its blocks are {', '.join(names)}")
    if set(spec) >= set(names):
        raise ConfigError(f"{WHERE} freezes every block of {arch}: leave at least one trainable or remove the "
                          f"gan_criterion")
    return [n for n in names if n in spec]


def frozen_parameter_names(named_parameters, blocks, chosen):
    """Names (from ``named_parameters``) of the parameters that belong to the ``chosen`` blocks."""
    prefixes = tuple(p for name, ps in blocks if name in chosen for p in ps)
    return [name for name in named_parameters if name.startswith(prefixes)] if prefixes else []

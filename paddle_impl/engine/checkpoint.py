"""Save weights and training checkpoints with paddle.save, written atomically; load them without running code.

Layouts (flat, as PaddleGAN's trainer writes them, so PaddleGAN files load too):
  iter_N_weight.pdparams      {net_name: state_dict}  (the EMA generator when EMA is on)
  iter_N_checkpoint.pdparams  {net_name: state_dict, optimizer_name: state_dict, 'lr_scheduler': state_dict,
                               'epoch': N (the iteration, PaddleGAN's key), 'ema': {'generator': state_dict},
                               'rng': {'python', 'numpy', 'paddle'}}
Optimizer states are stored with keys ``<net_name>.<parameter path>_<accumulator>_0`` (e.g.
``generator.conv_first.weight_moment1_0``) instead of paddle's process-specific tensor names, so a checkpoint
resumes in any process; ``optimizer_state`` / ``load_optimizer_state`` translate.
Files load through ``common_data.weights.files`` (never paddle.load, whose full unpickler runs what a file names):
a paddle.save pickle through its allow-list, or a .safetensors generator / discriminator state dict; arrays become
tensors as paddle.load gives them.
"""
import os

import numpy as np
import paddle

from common_data.weights.checkpoints import atomic_write
from common_data.errors import UserError
from common_data.weights.files import checked_kind, read_paddle, read_safetensors

BACKEND = "paddle"


def _save(obj, path):
    atomic_write(path, lambda tmp: paddle.save(obj, tmp))


def save_weights(path, nets_state):
    """Write ``{net_name: state_dict}`` atomically."""
    _save(dict(nets_state), path)


def save_checkpoint(path, state):
    """Write a full training state (see the module docstring) atomically."""
    _save(dict(state), path)


def load_checkpoint(path, what="checkpoint"):
    """Read a Paddle or .safetensors file as tensors, running nothing in it; a missing, corrupt, refused or
    PyTorch file -> one-line UserError naming it."""
    path = os.fspath(path)
    if checked_kind(path, what, BACKEND) == "safetensors":
        state = read_safetensors(path, what, BACKEND)
    else:
        state = read_paddle(path, what)
    if not isinstance(state, dict):
        raise UserError(f"{what} {path} holds a {type(state).__name__}, not a dict of state dicts")
    return _tensors(state)


def _tensors(obj):
    """numpy arrays (at any depth of dicts, lists and tuples) -> paddle tensors."""
    if isinstance(obj, np.ndarray):
        return paddle.to_tensor(obj)
    if isinstance(obj, dict):
        return type(obj)((k, _tensors(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tensors(v) for v in obj)
    return obj


def _param_names(nets):
    """paddle tensor name -> '<net_name>.<parameter path>' for every parameter of ``nets`` ({name: Layer})."""
    return {p.name: f"{net_name}.{path}" for net_name, net in nets.items() for path, p in net.named_parameters()}


def _rename(key, mapping):
    for old in sorted(mapping, key=len, reverse=True):
        if key.startswith(old + "_"):
            return mapping[old] + key[len(old):]
    return key


def optimizer_state(optimizer, nets):
    """optimizer.state_dict() with tensor names replaced by stable parameter paths of ``nets``."""
    mapping = _param_names(nets)
    return {_rename(k, mapping): v for k, v in optimizer.state_dict().items()}


def load_optimizer_state(optimizer, state, nets):
    """Inverse of ``optimizer_state``: map stable paths back to this process's tensor names, then load."""
    mapping = {v: k for k, v in _param_names(nets).items()}
    optimizer.set_state_dict({_rename(k, mapping): v for k, v in state.items()})

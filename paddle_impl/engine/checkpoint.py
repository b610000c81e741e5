"""Save / load weights and training checkpoints with paddle.save / paddle.load, written atomically.

Layouts (flat, as PaddleGAN's trainer writes them, so PaddleGAN files load too):
  iter_N_weight.pdparams      {net_name: state_dict}  (the EMA generator when EMA is on)
  iter_N_checkpoint.pdparams  {net_name: state_dict, optimizer_name: state_dict, 'lr_scheduler': state_dict,
                               'epoch': N (the iteration, PaddleGAN's key), 'ema': {'generator': state_dict},
                               'rng': {'python', 'numpy', 'paddle'}}
Optimizer states are stored with keys ``<net_name>.<parameter path>_<accumulator>_0`` (e.g.
``generator.conv_first.weight_moment1_0``) instead of paddle's process-specific tensor names, so a checkpoint
resumes in any process; ``optimizer_state`` / ``load_optimizer_state`` translate.
"""
import os
import pickle
import zipfile

import paddle

from common_data.checkpoints import atomic_write
from common_data.errors import UserError

TORCH_SUFFIXES = (".pth", ".pt", ".ckpt")


def _save(obj, path):
    atomic_write(path, lambda tmp: paddle.save(obj, tmp))


def save_weights(path, nets_state):
    """Write ``{net_name: state_dict}`` atomically."""
    _save(dict(nets_state), path)


def save_checkpoint(path, state):
    """Write a full training state (see the module docstring) atomically."""
    _save(dict(state), path)


def load_checkpoint(path, what="checkpoint"):
    """paddle.load a file; a missing, corrupt or PyTorch file -> one-line UserError naming it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{what} file not found: {path}")
    if path.endswith(TORCH_SUFFIXES) or zipfile.is_zipfile(path):
        raise UserError(f"{path} is a PyTorch file; use --backend torch, or convert it with: "
                        f"python tools/convert_weights.py --to paddle {path} {os.path.splitext(path)[0]}.pdparams")
    try:
        state = paddle.load(path)
    except (pickle.UnpicklingError, EOFError, ValueError, OSError, RuntimeError, TypeError, AttributeError,
            ImportError, IndexError, KeyError) as e:
        raise UserError(f"cannot read {what} {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                        f"; the file is corrupt or not a paddle.save file") from None
    if not isinstance(state, dict):
        raise UserError(f"{what} {path} holds a {type(state).__name__}, not a dict of state dicts")
    return state


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

"""Save / load weights and training checkpoints with torch.save / torch.load, written atomically.

Layouts (flat, as PaddleGAN's trainer writes them; the same keys as paddle_impl/engine/checkpoint.py):
  iter_N_weight.pth      {net_name: state_dict}  (the EMA generator when EMA is on)
  iter_N_checkpoint.pth  {net_name: state_dict, optimizer_name: state_dict, 'lr_scheduler': state_dict,
                          'epoch': N (the iteration, PaddleGAN's key), 'ema': {'generator': state_dict},
                          'seed': data seed, 'rng': {'python', 'numpy', 'torch'}}
Every optimizer has its own torch scheduler, all following one schedule, so one 'lr_scheduler' state restores all.
Files load with ``torch.load(weights_only=True)``: only tensors, numbers, strings, lists, tuples and dicts.
"""
import os
import pickle
import zipfile

import torch

from common_data.checkpoints import atomic_write
from common_data.errors import UserError

PADDLE_SUFFIXES = (".pdparams", ".pdopt", ".pdmodel", ".pdiparams")


def _save(obj, path):
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_weights(path, nets_state):
    """Write ``{net_name: state_dict}`` atomically."""
    _save(dict(nets_state), path)


def save_checkpoint(path, state):
    """Write a full training state (see the module docstring) atomically."""
    _save(dict(state), path)


def load_checkpoint(path, what="checkpoint"):
    """torch.load a file to CPU; a missing, corrupt or Paddle file -> one-line UserError naming it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{what} file not found: {path}")
    if path.endswith(PADDLE_SUFFIXES):
        raise UserError(f"{path} is a Paddle file; use --backend paddle, or convert it with: "
                        f"python tools/convert_weights.py --to torch {path} {os.path.splitext(path)[0]}.pth")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        hint = ("; it looks like a Paddle file (convert it with tools/convert_weights.py --to torch)"
                if not zipfile.is_zipfile(path) else "")
        raise UserError(f"cannot read {what} {path}: it holds objects other than tensors{hint} "
                        f"({str(e).splitlines()[0][:120]})") from None
    except (EOFError, ValueError, OSError, RuntimeError, TypeError, AttributeError, ImportError, IndexError,
            KeyError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot read {what} {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                        f"; the file is corrupt or not a torch.save file") from None
    if not isinstance(state, dict):
        raise UserError(f"{what} {path} holds a {type(state).__name__}, not a dict of state dicts")
    return state

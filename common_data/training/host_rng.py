"""The python and numpy generator states, saved in checkpoints (the backend adds its framework's generator)."""
import random

import numpy as np


def seed_host(seed):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)


def host_rng_state():
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(), "numpy": [kind, keys.tolist(), pos, has_gauss, cached]}


def set_host_rng_state(state):
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, np.uint32), int(pos), int(has_gauss), float(cached)))

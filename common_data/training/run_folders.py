"""Run folders: ``output_dir/[debug_]<config_name>-<YYYY-MM-DD-HH-MM>[-n]/``, and finding the one to auto-resume."""
import contextlib
import datetime
import os
import re

from common_data.errors import UserError
from common_data.weights.checkpoints import newest_checkpoint

STAMP_FORMAT = "%Y-%m-%d-%H-%M"
_STAMP = r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}"


def folder_prefix(config_name, debug=False):
    return f"{'debug_' if debug else ''}{config_name}"


def run_folders(output_dir, config_name, debug=False):
    """Run folders of this config under ``output_dir``, newest first (by the stamp in the name, then ``-n``).

    Only ``<prefix>-<stamp>[-n]``: config ``foo`` never picks up the runs of a config named ``foo-v2``.
    """
    pattern = re.compile(rf"^{re.escape(folder_prefix(config_name, debug))}-({_STAMP})(?:-(\d+))?$")
    found = []
    if os.path.isdir(output_dir):
        for name in os.listdir(output_dir):
            m = pattern.match(name)
            if m and os.path.isdir(os.path.join(output_dir, name)):
                found.append(((m.group(1), int(m.group(2) or 1)), os.path.join(output_dir, name)))
    return [path for _, path in sorted(found, reverse=True)]


def make_run_dir(output_dir, config_name, debug=False):
    """Create and return ``output_dir/[debug_]<config_name>-<stamp>`` (``-2``, ``-3``... if that minute is taken)."""
    stamp = datetime.datetime.now().strftime(STAMP_FORMAT)
    base = os.path.join(output_dir, f"{folder_prefix(config_name, debug)}-{stamp}")
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    os.makedirs(path)
    return path


def find_auto_resume(output_dir, config_name, debug, backend):
    """(newest complete iter_N_checkpoint of ``backend``, its run folder) from the newest run folder of this config
    that has one, else (None, None)."""
    for folder in run_folders(output_dir, config_name, debug):
        path = newest_checkpoint(folder, backend)
        if path:
            return path, folder
    return None, None


def run_config_of(weights_path):
    """The ``config.yaml`` a run wrote beside ``weights_path``, or None."""
    if not weights_path:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(weights_path)), "config.yaml")
    return path if os.path.isfile(path) else None


@contextlib.contextmanager
def run_config_hint(weights_path, config_path=None):
    """Weights refused by the configured net: when a run's ``config.yaml`` sits beside them (and is not the config
    in use), the one-line error names it as the fix (the demo's small net with the full-size shipped config, say)."""
    try:
        yield
    except UserError as e:
        run_config = run_config_of(weights_path)
        if run_config is None or (config_path and os.path.abspath(config_path) == run_config):
            raise
        raise type(e)(f"{e}; these weights come from the run whose config is {run_config}: use -c {run_config}"
                      ) from None

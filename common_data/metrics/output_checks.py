"""Checks on network outputs before anyone reports on them (validation, --evaluate-only)."""
import numpy as np

from common_data.errors import UserError


def check_finite_output(output, weights=None):
    """UserError naming ``weights`` (the file the generator was loaded from, if any) when ``output`` (an array of
    the generator's output) holds NaN or Inf: metrics of such an output describe a black image, not a model."""
    output = np.asarray(output)
    if np.isfinite(output).all():
        return output
    bad = int(output.size - np.isfinite(output).sum())
    source = f"the weights in {weights}" if weights else "the generator's current weights"
    raise UserError(f"the generator's output holds {bad} NaN/Inf value(s) of {output.size}: {source} are not "
                    f"usable (not finite, or overflowing); no metrics reported - check or replace them")

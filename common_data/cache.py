"""The one cache folder: ``$ESRGAN_TWIN_CACHE``, else ``$XDG_CACHE_HOME/esrgan-twin``, else ``~/.cache/esrgan-twin``."""
import os

CACHE_ENV = "ESRGAN_TWIN_CACHE"


def cache_dir(*parts: str) -> str:
    """``parts`` joined under the cache folder (not created here)."""
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "esrgan-twin")
    return os.path.join(base, *parts)

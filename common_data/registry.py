"""Name -> class registries; a config's ``name:`` is resolved through them."""
import difflib
import inspect

from .errors import ConfigError, first_line


class Registry:
    """A map from names to classes or functions of one kind (dataset, transform, arch, loss...)."""

    def __init__(self, kind):
        self.kind = kind
        self._items = {}

    def register(self, obj=None, name=None):
        """Use as ``@REG.register()`` or ``REG.register(cls)``; ``name`` defaults to ``obj.__name__``."""
        def deco(o):
            key = name or o.__name__
            if key in self._items and self._items[key] is not o:
                raise KeyError(f"{self.kind} {key!r} is registered twice")
            self._items[key] = o
            return o
        return deco(obj) if obj is not None else deco

    def get(self, name, where=None):
        """The registered object; an unknown name -> one-line ConfigError listing the known names."""
        if not isinstance(name, str) or name not in self._items:
            known = ", ".join(sorted(self._items))
            close = difflib.get_close_matches(str(name), list(self._items), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            at = f" (at {where})" if where else ""
            raise ConfigError(f"unknown {self.kind} name {name!r}{at}.{hint} Known: {known}")
        return self._items[name]

    def build(self, cfg, where=None, hints=(), **extra):
        """Build from a dict with a ``name`` key; other keys are keyword arguments.

        Arguments the class does not take -> one-line ConfigError naming the closest accepted one (or of ``hints``,
        keys the block may hold for someone else, e.g. a dataset block's ``batch_size``). A text value for an option
        whose default is a number or a boolean, and a TypeError / ValueError of the constructor, -> one-line
        ConfigError naming the option when it can be told.
        """
        if not isinstance(cfg, dict) or "name" not in cfg:
            raise ConfigError(f"{where or self.kind}: expected a mapping with a 'name:' key, got {cfg!r}")
        kwargs = {k: v for k, v in cfg.items() if k != "name"}
        kwargs.update(extra)
        cls = self.get(cfg["name"], where)
        label = f"{where or self.kind} ({cfg['name']})"
        try:
            params = inspect.signature(cls).parameters
        except (TypeError, ValueError):
            params = None
        if params is not None and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            for key in kwargs:
                if key not in accepted:
                    close = difflib.get_close_matches(str(key), accepted + list(hints), n=1)
                    hint = f" Did you mean {close[0]!r}?" if close else ""
                    known = ", ".join(accepted + list(hints))
                    raise ConfigError(f"{label}: unknown option {key!r}.{hint} Accepted: {known}")
        if params is not None:
            for key in cfg:
                if key in params and key != "name":
                    check_value_type(label, key, cfg[key], params[key].default)
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            culprit = next((f"option {k}={v!r}: " for k, v in cfg.items()
                            if k != "name" and isinstance(v, str) and repr(v) in str(e)), "")
            reason = first_line(e)
            raise ConfigError(f"{label}: {culprit}{reason}") from e

    def __contains__(self, name):
        return name in self._items

    def names(self):
        return sorted(self._items)


def check_value_type(label, key, value, default):
    """Text where the default is a number or a boolean (``nf: "64"``, a quoted YAML value), or true / false where
    the default is a number (``nb: true``) -> ConfigError."""
    if default is inspect.Parameter.empty or default is None:
        return
    if isinstance(value, str) and isinstance(default, bool):
        raise ConfigError(f"{label}: option {key!r} must be true or false (default {default}), got {value!r}")
    if isinstance(value, (str, bool)) and isinstance(default, (int, float)) and not isinstance(default, bool):
        raise ConfigError(f"{label}: option {key!r} must be a number (default {default!r}), got {value!r}")

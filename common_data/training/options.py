"""The command-line options a training run reads (tools/main.py's argparse namespace, or keywords in tests)."""

FIELDS = dict(resume=None, load=None, evaluate_only=False, seed=None, amp=False, debug=False, auto_resume=False,
              precision=None, config_file=None)


class Options:
    """``resume``, ``load``, ``evaluate_only``, ``seed``, ``amp``, ``debug``, ``auto_resume``, ``precision``: from ``args`` (any
    object with those attributes; missing or None ones take the defaults), overridden by keywords."""

    def __init__(self, args=None, **kwargs):
        for key, default in FIELDS.items():
            value = kwargs[key] if key in kwargs else getattr(args, key, None)
            setattr(self, key, default if value is None else value)

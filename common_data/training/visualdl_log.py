"""VisualDL for both backends' trainers (``enable_visualdl: true``): the writer, or one line saying what to install."""
from common_data.errors import UserError


def open_visualdl(logdir):
    """A ``visualdl.LogWriter`` on ``logdir``; without the package, a UserError (asked for, so never silently off)."""
    try:
        from visualdl import LogWriter
    except ImportError:
        raise UserError("enable_visualdl: true needs the visualdl package: pip install visualdl==2.5.3 "
                        "(or set enable_visualdl: false)") from None
    return LogWriter(logdir=logdir)

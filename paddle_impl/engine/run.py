"""run(cfg, args): train, resume, or evaluate once with the Paddle backend; returns the process exit code."""
from common_data.errors import UserError
from common_data.memory import keep_freed_memory
from common_data.run_guard import check_output_dir, exit_code

from .trainer import Trainer


def run(cfg, args):
    """``--evaluate-only --load W``: validate once; else train (after ``--resume`` / ``--load`` / auto-resume)."""
    if getattr(args, "evaluate_only", False) and not getattr(args, "load", None):
        raise UserError("--evaluate-only needs the weights to evaluate: add --load PATH (an iter_N_weight file)")
    check_output_dir(cfg.get("output_dir"))
    keep_freed_memory()
    trainer = Trainer(cfg, args)
    try:
        if getattr(args, "evaluate_only", False):
            trainer.test()
        else:
            trainer.train()
    except KeyboardInterrupt:
        return exit_code()  # 130 after Ctrl-C, 143 after SIGTERM
    finally:
        trainer.close()
    return 0

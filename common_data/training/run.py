"""``run_training(trainer_class, cfg, args) -> exit code``: train, resume, or evaluate once (tools/main.py)."""
from ..errors import UserError
from common_data.training.memory import keep_freed_memory
from common_data.training.run_guard import check_output_dir, exit_code
from .options import Options


def run_training(trainer_class, cfg, args=None):
    """``--evaluate-only --load W`` validates once; else trains (after ``--resume`` / ``--load`` / auto-resume).

    Returns 0, or 130 after Ctrl-C and 143 after SIGTERM (the last finished iteration is saved). UserErrors
    propagate to the caller, which prints them as one line.
    """
    opts = Options(args)
    if opts.evaluate_only and not opts.load:
        raise UserError("--evaluate-only needs the weights to evaluate: add --load PATH (an iter_N_weight file)")
    check_output_dir(cfg.get("output_dir"))
    keep_freed_memory()
    trainer = None
    try:
        trainer = trainer_class(cfg, opts)
        if opts.evaluate_only:
            trainer.validate()  # logs the metrics line
        else:
            trainer.train()
        return 0
    except KeyboardInterrupt:
        return exit_code()  # 130 after Ctrl-C, 143 after SIGTERM
    finally:
        if trainer is not None:
            trainer.close()
        (trainer.backend if trainer is not None else trainer_class.backend_class()).shutdown()

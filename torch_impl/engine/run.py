"""``run(cfg, args) -> exit code``: train, resume, or evaluate once (tools/main.py --backend torch calls it)."""
import torch.distributed as dist

from common_data.errors import UserError
from common_data.memory import keep_freed_memory
from common_data.run_guard import check_output_dir, exit_code

from .trainer import Options, Trainer


def run(cfg, args=None):
    """``args`` has resume, load, evaluate_only, seed, amp, debug, auto_resume (missing ones take defaults).

    Returns 0 on success, 130 after Ctrl-C and 143 after SIGTERM (the last finished iteration is saved).
    UserErrors propagate to the caller, which prints them as one line.
    """
    opts = Options(args)
    if opts.evaluate_only and not opts.load:
        raise UserError("--evaluate-only needs the weights to evaluate: add --load PATH (an iter_N_weight file)")
    check_output_dir(cfg.get("output_dir"))
    keep_freed_memory()
    trainer = None
    try:
        trainer = Trainer(cfg, opts)
        if opts.evaluate_only:
            it = getattr(trainer, 'loaded_iter', None) or trainer.start_iter - 1
            trainer.validate(it)  # logs the metrics line
            return 0
        trainer.train()
        return 0
    except KeyboardInterrupt:
        return exit_code()  # 130 after Ctrl-C, 143 after SIGTERM
    finally:
        if trainer is not None:
            trainer.close()
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()

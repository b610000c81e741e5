"""The ``precision`` choice (``auto`` | ``fp32`` | ``bf16`` | ``fp16``) of training and inference, resolved once.

``auto`` picks bf16 autocast on a CPU whose instructions run it natively (AMX-BF16 or AVX512-BF16, read from the
CPU's flags, never assumed: the project's machines change between sessions), fp16 autocast on a CUDA GPU and fp32
elsewhere. Master weights, optimizer state, EMA and checkpoints stay fp32 whatever the choice, so a run resumes
at any precision. Measured on AMX (../shared/notes, README §speed): bf16 autocast + channels_last trains RRDBNet
3.35x and infers 3.7-4.7x faster than fp32, within 0.01 dB PSNR of it on real weights.
"""
from dataclasses import dataclass

from common_data.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CPU_BF16_FLAGS = (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16"))
AVX512_CORE = {"avx512f", "avx512bw", "avx512vl", "avx512dq"}  # oneDNN's avx512_core: its floor for bf16


@dataclass(frozen=True)
class Precision:
    """The resolved choice: ``name`` (fp32 / bf16 / fp16) and the reason, printed once by the command;
    ``requested``: what the user asked for (``auto`` lets a backend settle for less, an explicit choice does not)."""

    name: str
    reason: str
    requested: str = "auto"

    @property
    def autocast(self):
        return self.name != "fp32"

    def describe(self):
        return f"precision {self.name} ({self.reason})"


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (empty when the file is unreadable, e.g. off Linux)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_bf16_feature(flags=None):
    """``"AMX-BF16"`` / ``"AVX512-BF16"`` when the CPU runs bf16 natively, else None."""
    flags = cpu_flags() if flags is None else flags
    for flag, label in CPU_BF16_FLAGS:
        if flag in flags:
            return label
    return None


def onednn_bf16_capable(flags=None):
    """Whether oneDNN's bf16 kernels (Paddle Inference's) run here: natively, or emulated on AVX-512 (avx512_core);
    on other CPUs Paddle Inference turns bf16 off and silently computes fp32."""
    flags = cpu_flags() if flags is None else flags
    return cpu_bf16_feature(flags) is not None or AVX512_CORE <= flags


def check_precision(value, where="precision"):
    """``value`` lower-cased if it is one of PRECISIONS, else one ConfigError naming the choices."""
    name = str(value).lower()
    if name not in PRECISIONS:
        raise ConfigError(f"{where} must be one of {', '.join(PRECISIONS)}, got {value!r}")
    return name


def resolve_precision(requested, device="cpu", flags=None, cuda_bf16=False, where="precision"):
    """The Precision for ``requested`` on ``device`` ("cpu" or "cuda"); ``flags``: the CPU's (read when None)."""
    name = check_precision(requested or "auto", where)
    if device == "cuda":
        if name == "auto":
            return Precision("fp16", "CUDA GPU: fp16 autocast")
        if name == "bf16" and not cuda_bf16:
            raise ConfigError(f"{where} bf16: this GPU has no bf16 support; use fp16 or fp32")
        return Precision(name, "as configured", name)
    if name == "fp16":
        raise ConfigError(f"{where} fp16 needs a CUDA GPU; on a CPU use bf16 (fast with AMX / AVX512-BF16) or fp32")
    feature = cpu_bf16_feature(flags)
    if name == "auto":
        if feature:
            return Precision("bf16", f"this CPU has {feature}")
        return Precision("fp32", "this CPU has neither AMX-BF16 nor AVX512-BF16")
    if name == "bf16" and not feature:
        return Precision("bf16", "as configured; this CPU has no AMX-BF16 / AVX512-BF16, so bf16 is emulated and "
                                 "slower than fp32", name)
    return Precision(name, "as configured", name)

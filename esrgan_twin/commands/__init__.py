"""The commands of ``esrgan-twin`` (and ``tools/*.py``), one module each with ``main(argv) -> exit code``, plus the
library they share (reading, building and running weights on every engine: ``convert``; ONNX and Paddle export;
the loaded model and image handling of ``infer``; the engine table of ``parity``)."""

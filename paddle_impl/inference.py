"""Run an exported Paddle inference model (tools/export_model.py) with paddle.inference on the CPU, oneDNN on.

    runner = PaddleInferenceRunner("inference_model")      # a folder, or a path prefix / .json / .pdmodel file
    sr = runner(np_nchw_float32)                            # -> numpy NCHW float32
"""
import glob
import os

import numpy as np

from common_data.errors import UserError

GRAPH_EXTENSIONS = (".json", ".pdmodel")  # PIR graph (paddle >= 3) or the old ProgramDesc


def find_model_files(path):
    """A model folder, prefix or graph file -> (graph file, .pdiparams file); one-line UserError when absent."""
    path = os.fspath(path)
    if os.path.isdir(path):
        params = sorted(glob.glob(os.path.join(path, "*.pdiparams")))
        if len(params) != 1:
            found = "no" if not params else f"{len(params)}"
            raise UserError(f"{path}: {found} .pdiparams files in this folder; expected the one model "
                            "tools/export_model.py writes (or give its path prefix)")
        prefix = params[0][:-len(".pdiparams")]
    else:
        prefix = path
        for ext in GRAPH_EXTENSIONS + (".pdiparams",):
            if path.endswith(ext):
                prefix = path[:-len(ext)]
    graph = next((prefix + ext for ext in GRAPH_EXTENSIONS if os.path.isfile(prefix + ext)), None)
    if graph is None or not os.path.isfile(prefix + ".pdiparams"):
        raise UserError(f"{path}: not a Paddle inference model (need {os.path.basename(prefix)}.json or .pdmodel "
                        "and .pdiparams); export one with tools/export_model.py")
    return graph, prefix + ".pdiparams"


class PaddleInferenceRunner:
    """A paddle.inference predictor on the CPU: ``runner(x)`` maps numpy NCHW float32 to numpy.

    ``threads`` defaults to the number of cores; ``onednn`` turns on oneDNN kernels and fusions
    (``Config.enable_mkldnn``); ``shape_cache`` bounds the oneDNN primitives kept per distinct input shape;
    ``bf16`` runs oneDNN's bf16 kernels (``Config.enable_mkldnn_bfloat16``; inputs and outputs stay float32).
    """

    def __init__(self, path, threads=None, onednn=True, shape_cache=16, bf16=False):
        try:
            from paddle import inference
        except ImportError:
            raise UserError("Paddle Inference needs paddlepaddle: pip install paddlepaddle==3.2.2") from None
        self.graph_file, self.params_file = find_model_files(path)
        self.threads = int(threads or os.cpu_count() or 1)
        config = inference.Config(self.graph_file, self.params_file)
        config.disable_gpu()
        config.disable_glog_info()
        config.set_cpu_math_library_num_threads(self.threads)
        if onednn or bf16:
            config.enable_mkldnn()
            config.set_mkldnn_cache_capacity(shape_cache)
        if bf16:
            config.enable_mkldnn_bfloat16()  # oneDNN's bf16 kernels (2.27x on AMX, ../shared/notes)
        try:
            self.predictor = inference.create_predictor(config)
        except Exception as e:  # noqa: BLE001 - paddle raises its own types for unreadable models
            reason = str(e).strip().splitlines()[-1][:160] if str(e).strip() else type(e).__name__
            raise UserError(f"{self.graph_file}: Paddle Inference cannot load it: {reason}") from None
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output_name = self.predictor.get_output_names()[0]

    def __call__(self, x):
        x = np.ascontiguousarray(x, np.float32)
        self.input.reshape(list(x.shape))
        self.input.copy_from_cpu(x)
        self.predictor.run()
        return self.predictor.get_output_handle(self.output_name).copy_to_cpu()

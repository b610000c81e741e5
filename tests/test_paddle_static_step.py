"""The static-graph + oneDNN train step (``to_static``) computes what eager training computes."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, paddle
    from paddle_impl.archs.rrdbnet_arch import RRDBNet
    from paddle_impl.engine.static_step import StaticPixelStep

    paddle.seed(0)
    kw = dict(in_nc=3, out_nc=3, nf=16, nb=1, gc=16)
    eager = RRDBNet(**kw)
    rng = np.random.default_rng(0)
    lq = rng.random((2, 3, 12, 12), dtype=np.float32)
    gt = rng.random((2, 3, 48, 48), dtype=np.float32)

    def adam(params, sched):
        return paddle.optimizer.Adam(sched, parameters=params, beta1=0.9, beta2=0.99)

    s_sched = paddle.optimizer.lr.MultiStepDecay(2e-3, milestones=[2], gamma=0.5)
    static = StaticPixelStep(lambda: RRDBNet(**kw), lambda: paddle.nn.L1Loss(), lambda p: adam(p, s_sched),
                             lq.shape, gt.shape)
    static.set_weights(eager.state_dict())
    e_sched = paddle.optimizer.lr.MultiStepDecay(2e-3, milestones=[2], gamma=0.5)
    opt = adam(eager.parameters(), e_sched)
    out = {"static": [], "eager": []}
    for _ in range(4):
        out["static"].append(static.step(lq, gt)); s_sched.step()
        loss = paddle.nn.functional.l1_loss(eager(paddle.to_tensor(lq)), paddle.to_tensor(gt))
        loss.backward(); opt.step(); opt.clear_grad(); e_sched.step()
        out["eager"].append(float(loss))
    w = static.get_weights()
    out["max_weight_diff"] = max(float(np.abs(w[k] - v.numpy()).max()) for k, v in eager.state_dict().items())
    # A second program resumed from the first's weights and Adam state continues identically.
    twin = StaticPixelStep(lambda: RRDBNet(**kw), lambda: paddle.nn.L1Loss(), lambda p: adam(p, s_sched),
                           lq.shape, gt.shape)
    twin.set_weights(w)
    twin.set_optimizer_state(static.optimizer_state())
    out["resumed"] = [twin.step(lq, gt), static.step(lq, gt)]
    out["n_opt_state"] = len(static.optimizer_state())
    out["ops"] = sorted({op.name() for op in static.main.global_block().ops})
    print(json.dumps(out))
""")


@pytest.mark.parametrize("fused", ["1", "0"])
def test_static_step_matches_eager_training_and_resumes(fused, tmp_path):
    """With the fused bias+LeakyReLU op, compiled here into an empty cache as on a fresh machine (it gets
    oneDNN-layout inputs in this program), and with its plain-op fallback."""
    env = dict(os.environ, FLAGS_use_mkldnn="1", OMP_NUM_THREADS="1", ESRGAN_TWIN_FUSED_OPS=fused,
               ESRGAN_TWIN_CACHE=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", f"ROOT = {ROOT!r}\n" + SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for s, e in zip(res["static"], res["eager"]):
        assert abs(s - e) <= 1e-4 * abs(e)
    assert res["static"][-1] < res["static"][0]
    assert res["max_weight_diff"] < 1e-4
    assert res["resumed"][0] == res["resumed"][1]
    # Adam keeps moment1, moment2, beta1_pow, beta2_pow per parameter.
    assert res["n_opt_state"] % 4 == 0 and res["n_opt_state"] > 0
    assert ("custom_op.bias_act" in res["ops"]) == (fused == "1"), res["ops"]
    assert bool(list(tmp_path.rglob("*.so"))) == (fused == "1")


STRATEGY_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, paddle
    from paddle_impl.archs import onednn_train, rrdbnet_arch
    from paddle_impl.engine import static_step
    from paddle_impl.engine.backend import PaddleBackend
    from paddle_impl.models import build_model

    paddle.seed(0)
    gen = {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 16, "nb": 1, "gc": 16}
    cfg = {"model": {"name": "BaseSRModel", "generator": gen, "pixel_criterion": {"name": "L1Loss"},
                     "to_static": True}}
    model = build_model(cfg["model"])
    model.setup_optimizers({"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
                           {"name": "MultiStepDecay", "learning_rate": 1e-3, "milestones": [10], "gamma": 0.5})
    strategy = PaddleBackend().step_strategy(model, cfg)
    eager = rrdbnet_arch.RRDBNet(**{k: v for k, v in gen.items() if k != "name"})
    x = paddle.to_tensor(np.random.default_rng(1).random((1, 3, 8, 8), dtype=np.float32))
    fused_calls, seen = [0], {}
    real_bias_act_op = onednn_train.bias_act_op

    def counting_bias_act_op():
        fused_calls[0] += 1
        return real_bias_act_op()

    onednn_train.bias_act_op = counting_bias_act_op
    real_build_arch, real_build_loss = static_step.build_arch, static_step.build_loss

    def build_arch(*args):
        seen["traced"] = real_build_arch(*args)
        return seen["traced"]

    def build_loss(*args):
        # called while the copy is being traced: the eager nets of this process run their plain forward
        def flags(net):
            return [layer.onednn_ops for layer in net.sublayers(include_self=True) if hasattr(layer, "onednn_ops")]
        seen["flags"] = {"traced": flags(seen["traced"]), "eager": flags(eager),
                         "model": flags(model.nets["generator"])}
        paddle.disable_static()
        try:
            before = fused_calls[0]
            eager(x)
            seen["eager_fused_calls"] = fused_calls[0] - before
        finally:
            paddle.enable_static()
        return real_build_loss(*args)

    static_step.build_arch, static_step.build_loss = build_arch, build_loss
    rng = np.random.default_rng(0)
    model.setup_input({"lq": rng.random((2, 3, 12, 12), dtype=np.float32),
                       "gt": rng.random((2, 3, 48, 48), dtype=np.float32)})
    strategy.train_iter(model)
    with onednn_train.onednn_train_ops(eager):  # the positive control: the net's own flag does change its forward
        before = fused_calls[0]
        eager(x)
        own_fused_calls = fused_calls[0] - before
    state = strategy.training_state(model)
    # static -> eager -> static: the checkpoint an eager run writes from it resumes a new static step identically
    static_step.build_arch, static_step.build_loss = real_build_arch, real_build_loss
    plain = dict(cfg["model"], to_static=False)
    eager_model, again = build_model(plain), build_model(cfg["model"])
    for m in (eager_model, again):
        m.setup_optimizers({"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
                           {"name": "MultiStepDecay", "learning_rate": 1e-3, "milestones": [10], "gamma": 0.5})
    eager_model.load_training_state(state, "static")
    resumed = PaddleBackend().step_strategy(again, cfg)
    resumed.load_training_state(again, eager_model.training_state(), "eager")
    batch = {"lq": rng.random((2, 3, 12, 12), dtype=np.float32), "gt": rng.random((2, 3, 48, 48), dtype=np.float32)}
    continued = []
    for m, s in ((model, strategy), (again, resumed)):
        for _ in range(2):  # the second loss follows a step that used the restored Adam moments
            m.setup_input(batch)
            s.train_iter(m)
            continued.append(m.get_current_losses()["l_pix"])
    print(json.dumps({
        "continued": continued,
        "strategy": type(strategy).__name__, "eager_strategy": type(PaddleBackend().step_strategy(
            build_model(dict(cfg["model"], to_static=False)), cfg)).__name__,
        "model_attrs": sorted(vars(model)),
        "model_static_values": [k for k, v in vars(model).items()
                                if isinstance(v, (paddle.static.Program, static_step.StaticPixelStep))],
        "strategy_has_program": isinstance(strategy.program, static_step.StaticPixelStep),
        "flags": seen["flags"], "eager_fused_calls": seen["eager_fused_calls"], "own_fused_calls": own_fused_calls,
        "losses": sorted(model.get_current_losses()),
        "opt_keys": sorted(state["optim"]), "params": sorted(model.nets["generator"].state_dict()),
    }))
""")


@pytest.fixture(scope="module")
def strategy_run():
    env = dict(os.environ, FLAGS_use_mkldnn="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", f"ROOT = {ROOT!r}\n" + STRATEGY_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_to_static_model_holds_no_program_the_backend_strategy_does(strategy_run):
    res = strategy_run
    assert res["strategy"] == "StaticStep" and res["eager_strategy"] == "EagerStep"
    assert res["strategy_has_program"] and not res["model_static_values"]
    assert [k for k in res["model_attrs"] if "static" in k] == ["to_static"]
    assert res["losses"] == ["l_pix"]


def test_onednn_train_ops_change_only_the_traced_net(strategy_run):
    """While the strategy traces its copy of the generator, other RRDBNets (the model's own, a fresh one) keep
    their plain forward: the flag is the traced net's, not the module's."""
    flags = strategy_run["flags"]
    assert flags["traced"] and all(flags["traced"])
    assert flags["eager"] and not any(flags["eager"]) and flags["model"] and not any(flags["model"])
    assert strategy_run["eager_fused_calls"] == 0
    assert strategy_run["own_fused_calls"] > 0


def test_static_checkpoint_keeps_eager_trainings_optimizer_layout(strategy_run):
    """generator.<param>_moment1_0 ... and LR_Scheduler, so runs resume across eager and static training."""
    keys, params = set(strategy_run["opt_keys"]), strategy_run["params"]
    assert "LR_Scheduler" in keys
    for p in params:
        assert {f"generator.{p}_moment1_0", f"generator.{p}_moment2_0"} <= keys, p


def test_static_state_resumes_through_an_eager_models_checkpoint(strategy_run):
    continued = strategy_run["continued"]
    assert continued[2:] == pytest.approx(continued[:2], rel=1e-6)


def test_to_static_refuses_gan_models_in_one_line():
    """The static step trains l_pix alone: an ESRGAN-family model asking for it is a ConfigError, not eager
    training under a to_static config."""
    pytest.importorskip("paddle")
    from common_data.errors import ConfigError
    from paddle_impl.engine.backend import PaddleBackend
    from paddle_impl.models import build_model
    model_cfg = {"name": "ESRGAN", "generator": {"name": "RRDBNet", "nf": 16, "nb": 1, "gc": 16},
                 "pixel_criterion": {"name": "L1Loss"}, "to_static": True}
    with pytest.raises(ConfigError, match=r"model\.to_static.*not ESRGAN.*model\.to_static=false"):
        PaddleBackend().step_strategy(build_model(model_cfg), {"model": model_cfg})


def test_to_static_auto_trains_eagerly_in_a_multi_process_run_and_says_why():
    """A config the static step fits (the shipped PSNR configs say auto) still launches on several processes:
    auto takes the eager step there; an explicit true is refused when the nets are wrapped."""
    pytest.importorskip("paddle")
    from common_data.errors import ConfigError
    from paddle_impl.engine.backend import PaddleBackend
    from paddle_impl.engine.static_step import choose_step
    from paddle_impl.models import build_model
    model_cfg = {"name": "BaseSRModel", "generator": {"name": "RRDBNet", "nf": 16, "nb": 1, "gc": 16},
                 "pixel_criterion": {"name": "L1Loss"}, "to_static": "auto"}
    step = choose_step(build_model(model_cfg), {"model": model_cfg}, multi_process=True)
    assert step.name == "eager" and step.why == "to_static auto: eager, since the static oneDNN step trains one " \
                                                "process only"
    with pytest.raises(ConfigError, match=r"model\.to_static trains one process only"):
        PaddleBackend().wrap_distributed(build_model(dict(model_cfg, to_static=True)), {})


BF16_SCRIPT = textwrap.dedent("""
    import json
    import numpy as np, paddle
    from paddle_impl.archs.rrdbnet_arch import RRDBNet
    from paddle_impl.engine.static_step import StaticPixelStep

    paddle.seed(0)
    kw = dict(in_nc=3, out_nc=3, nf=16, nb=1, gc=16)
    w0 = {k: v.numpy() for k, v in RRDBNet(**kw).state_dict().items()}
    rng = np.random.default_rng(0)
    lq = rng.random((2, 3, 12, 12), dtype=np.float32)
    gt = rng.random((2, 3, 48, 48), dtype=np.float32)

    def program(bf16):  # plain SGD (our SGD is paddle's Momentum at 0): each update is -lr * the gradient
        return StaticPixelStep(lambda: RRDBNet(**kw), lambda: paddle.nn.L1Loss(),
                               lambda p: paddle.optimizer.Momentum(0.5, momentum=0.0, parameters=p),
                               lq.shape, gt.shape, bf16=bf16)
    out = {}
    for bf16 in (False, True):
        p = program(bf16)
        p.set_weights(w0)
        losses = [p.step(lq, gt)]
        w1 = p.get_weights()
        losses += [p.step(lq, gt) for _ in range(2)]
        dtypes = sorted({str(v.type()) for op in p.main.global_block().ops if op.name() == "pd_op.conv2d_grad"
                         for v in op.results() if "tensor" in str(v.type())})
        out["bf16" if bf16 else "fp32"] = {
            "losses": losses, "update": {k: (w1[k] - w0[k]).ravel().tolist() for k in w0},
            "ops": sorted({op.name() for op in p.main.global_block().ops}), "grad_types": dtypes,
            "weight_dtypes": sorted({str(v.dtype) for v in p.get_weights().values()})}
    print(json.dumps(out))
""")


@pytest.mark.skipif(not __import__("common_data.config.precision", fromlist=["x"]).onednn_bf16_capable(),
                    reason="oneDNN's bf16 kernels need AVX-512 (this CPU has none)")
def test_bf16_static_step_updates_follow_fp32_gradients(tmp_path):
    """precision bf16: the convs' backward runs on bf16 tensors (to_bf16 / bias_act_bf16 around each conv); from the
    same weights, one SGD update points where fp32's does (cosine > 0.999 per tensor, within 3 %) and the weights
    stay float32."""
    env = dict(os.environ, FLAGS_use_mkldnn="1", OMP_NUM_THREADS="1", ESRGAN_TWIN_CACHE=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", BF16_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    fp32, bf16 = res["fp32"], res["bf16"]
    assert {"custom_op.to_bf16", "custom_op.bias_act_bf16"} <= set(bf16["ops"])
    assert not {"custom_op.to_bf16", "custom_op.bias_act_bf16"} & set(fp32["ops"])
    assert all("bf16" in t for t in bf16["grad_types"]) and not any("bf16" in t for t in fp32["grad_types"])
    assert bf16["weight_dtypes"] == ["float32"]
    for name, ref in fp32["update"].items():
        a, b = np.asarray(ref), np.asarray(bf16["update"][name])
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        assert cos > 0.999 and np.linalg.norm(a - b) <= 3e-2 * np.linalg.norm(a), (name, cos)
    np.testing.assert_allclose(bf16["losses"], fp32["losses"], rtol=2e-2)
    assert bf16["losses"] != fp32["losses"]  # bf16 did run
    assert bf16["losses"][1] < bf16["losses"][0]  # the first update descends (lr 0.5 overshoots later)


def test_bf16_trains_in_the_static_step_only_and_auto_says_why(monkeypatch):
    """settle_precision: bf16 needs the static step, oneDNN and the compiled ops; auto settles for fp32 with the
    reason where one is missing, an explicit bf16 is refused in one line."""
    pytest.importorskip("paddle")
    from common_data.config.precision import Precision
    from common_data.errors import ConfigError
    from common_data.training.steps import EagerStep
    from paddle_impl.engine import static_step
    from paddle_impl.models import build_model
    model_cfg = {"name": "BaseSRModel", "generator": {"name": "RRDBNet", "nf": 16, "nb": 1, "gc": 16},
                 "pixel_criterion": {"name": "L1Loss"}, "to_static": True}
    auto, asked = Precision("bf16", "this CPU has AVX512-BF16"), Precision("bf16", "as configured", "bf16")
    fp32 = Precision("fp32", "as configured", "fp32")
    monkeypatch.setattr(static_step, "onednn_enabled", lambda: True)
    monkeypatch.setattr(static_step, "bf16_ops", lambda: object())

    def static():
        return static_step.StaticStep(build_model(model_cfg), model_cfg)
    step = static()
    step.precision = static_step.settle_precision(step, auto)  # as choose_step does
    assert step.precision is auto and step.bf16
    step.precision = static_step.settle_precision(step, fp32)
    assert step.precision is fp32 and not step.bf16
    eager = EagerStep()
    eager.why = "to_static auto: eager, since the static oneDNN step trains one process only"
    settled = static_step.settle_precision(eager, auto)
    assert settled.name == "fp32" and "eager paddle step trains fp32" in settled.reason and eager.why in settled.reason
    with pytest.raises(ConfigError, match=r"precision bf16: the eager paddle step.*\(model\.to_static: auto or true\)"):
        static_step.settle_precision(EagerStep(), asked)
    monkeypatch.setattr(static_step, "bf16_ops", lambda: None)
    step = static()
    step.precision = static_step.settle_precision(step, auto)
    assert step.precision.name == "fp32" and "bf16 ops could not be built" in step.precision.reason and not step.bf16
    with pytest.raises(ConfigError, match=r"precision bf16: the static step's bf16 ops could not be built"):
        static_step.settle_precision(static(), asked)
    monkeypatch.setattr(static_step, "onednn_enabled", lambda: False)
    with pytest.raises(ConfigError, match=r"precision bf16: the static step runs bf16 on oneDNN only"):
        static_step.settle_precision(static(), asked)

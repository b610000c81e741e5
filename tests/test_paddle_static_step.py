"""The static-graph + oneDNN train step (``to_static``) computes what eager training computes."""
import json
import os
import subprocess
import sys
import textwrap

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
    from paddle_impl.archs import rrdbnet_arch
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
    real_bias_act_op = rrdbnet_arch.bias_act_op

    def counting_bias_act_op():
        fused_calls[0] += 1
        return real_bias_act_op()

    rrdbnet_arch.bias_act_op = counting_bias_act_op
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
    with rrdbnet_arch.onednn_train_ops(eager):  # the positive control: the net's own flag does change its forward
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

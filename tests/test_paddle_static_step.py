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
    sys.path.insert(0, ROOT)
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

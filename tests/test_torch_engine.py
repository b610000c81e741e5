"""torch_impl.engine: lr schedules, optimizers, checkpoints, the trainer (resume, interrupts, debug, auto-resume,
evaluate-only) and tools/main.py --backend torch."""
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from common_data.config.loading import load_config
from common_data.data.demo_data import make_demo_data
from common_data.errors import ConfigError, UserError
from helpers import paired_crop, paired_op, paired_preprocess
from torch_impl.engine import checkpoint as ckpt
from torch_impl.engine.lr_scheduler import build_lr_scheduler
from torch_impl.engine.optimizer import build_optimizer
from torch_impl.engine.run import run
from torch_impl.engine.trainer import Options, Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LR0, ETA = 1e-3, 1e-6


# ----------------------------------------------------------------------------- lr schedules
def lrs(cfg, steps):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=123.0)
    sched = build_lr_scheduler(cfg, opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]['lr'])
        opt.step()
        sched.step()
    return out


COSINE = {'name': 'CosineAnnealingRestartLR', 'learning_rate': LR0, 'periods': [4, 6], 'restart_weights': [1, 0.5],
          'eta_min': ETA}
MULTISTEP = {'name': 'MultiStepDecay', 'learning_rate': LR0, 'milestones': [2, 5], 'gamma': 0.5}


def test_cosine_restart_matches_closed_form_at_chosen_steps():
    got = lrs(COSINE, 11)
    assert got[0] == pytest.approx(LR0)                                  # start of period 1
    assert got[2] == pytest.approx((LR0 + ETA) / 2)                      # half way: cos(pi/2) = 0
    assert got[4] == pytest.approx(ETA)                                  # end of period 1
    assert got[5] == pytest.approx(ETA + 0.25 * (LR0 - ETA) * (1 + math.cos(math.pi / 6)))  # restart at weight 0.5
    assert got[7] == pytest.approx(ETA + 0.25 * (LR0 - ETA))             # half way through period 2
    assert got[10] == pytest.approx(ETA)                                 # end of period 2


def test_multistep_decay_halves_at_each_milestone():
    assert lrs(MULTISTEP, 7) == pytest.approx([LR0, LR0, LR0 / 2, LR0 / 2, LR0 / 2, LR0 / 4, LR0 / 4])
    assert lrs(dict(MULTISTEP, name='MultiStepLR'), 7) == lrs(MULTISTEP, 7)


LINEAR = {'name': 'LinearDecay', 'learning_rate': LR0, 'start_epoch': 2, 'decay_epochs': 3, 'iters_per_epoch': 1}


def test_linear_decay_is_constant_then_linear_to_zero():
    # PaddleGAN: factor = 1 - max(0, epoch + 1 - start_epoch) / (decay_epochs + 1)
    assert lrs(LINEAR, 6) == pytest.approx([LR0, LR0, 0.75 * LR0, 0.5 * LR0, 0.25 * LR0, 0.0])


@pytest.mark.parametrize('cfg', [COSINE, MULTISTEP, LINEAR], ids=['cosine', 'multistep', 'linear'])
def test_torch_and_paddle_schedules_give_the_same_lr_every_step(cfg):
    pytest.importorskip('paddle')
    from paddle_impl.engine.lr_scheduler import build_lr_scheduler as paddle_build
    sched = paddle_build(dict(cfg))
    expected = []
    for _ in range(11):
        expected.append(sched())
        sched.step()
    assert lrs(cfg, 11) == pytest.approx(expected, rel=1e-12)


def test_missing_learning_rate_is_a_config_error():
    with pytest.raises(ConfigError, match='lr_scheduler.learning_rate'):
        lrs({'name': 'MultiStepDecay', 'milestones': [1]}, 1)


def test_optimizer_takes_paddlegan_keys():
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = build_optimizer({'name': 'Adam', 'net_names': ['generator'], 'beta1': 0.5, 'beta2': 0.9,
                           'weight_decay': 0.1}, p, {'learning_rate': 3e-4})
    assert isinstance(opt, torch.optim.Adam)
    assert opt.param_groups[0]['betas'] == (0.5, 0.9)
    assert opt.param_groups[0]['weight_decay'] == 0.1 and opt.param_groups[0]['lr'] == 3e-4
    with pytest.raises(ConfigError, match='momentum'):
        build_optimizer({'name': 'Adam', 'momentum': 0.9}, p, 1e-3)


# ----------------------------------------------------------------------------- checkpoint files
def test_failing_writer_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / 'iter_1_checkpoint.pth'
    ckpt.save_checkpoint(path, {'generator': {'w': torch.ones(2)}, 'epoch': 1})

    def half_write(obj, f):
        with open(f, 'wb') as fh:
            fh.write(b'PK\x03\x04 half')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', half_write)
    with pytest.raises(UserError, match='disk is full'):
        ckpt.save_checkpoint(path, {'generator': {'w': torch.zeros(2)}, 'epoch': 2})
    monkeypatch.undo()
    state = ckpt.load_checkpoint(path)
    assert state['epoch'] == 1 and torch.equal(state['generator']['w'], torch.ones(2))
    assert os.listdir(tmp_path) == ['iter_1_checkpoint.pth']


def test_bad_checkpoint_files_give_one_line_errors(tmp_path):
    with pytest.raises(UserError, match='not found: .*nope.pth'):
        ckpt.load_checkpoint(tmp_path / 'nope.pth')
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(os.urandom(200))
    with pytest.raises(UserError, match='corrupt.pth'):
        ckpt.load_checkpoint(corrupt)
    paddle_file = tmp_path / 'w.pdparams'
    paddle_file.write_bytes(b'x')
    with pytest.raises(UserError, match='Paddle file.*convert_weights.py --to torch'):
        ckpt.load_checkpoint(paddle_file)
    import pickle
    numpy_pickle = tmp_path / 'numpy.pth'  # what paddle.save writes: a plain pickle of numpy arrays
    numpy_pickle.write_bytes(pickle.dumps({'w': np.ones(2)}))
    with pytest.raises(UserError, match='numpy.pth'):
        ckpt.load_checkpoint(numpy_pickle)


# ----------------------------------------------------------------------------- trainer
@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    make_demo_data(root, num_train=4, num_test=2, size=32)
    return str(root)


def make_cfg(demo, out, total_iters=6, model='RealESRNet', **top):
    train_pre = paired_preprocess(paired_crop(16), paired_op('PairedRandomHorizontalFlip'))
    test_pre = paired_preprocess()
    cfg = dict(
        total_iters=total_iters, output_dir=str(out), min_max='(0., 1.)',
        model={'name': model, 'generator': {'name': 'RRDBNet', 'nf': 8, 'nb': 1, 'gc': 4},
               'pixel_criterion': {'name': 'L1Loss'}, **({'l1_gt_usm': False} if model == 'RealESRNet' else {})},
        dataset={'train': {'name': 'SRDataset', 'gt_folder': f'{demo}/train', 'lq_folder': f'{demo}/train_X4',
                           'scale': 4, 'batch_size': 2, 'num_workers': 0, 'preprocess': train_pre},
                 'test': {'name': 'SRDataset', 'gt_folder': f'{demo}/test', 'lq_folder': f'{demo}/test_X4',
                          'scale': 4, 'preprocess': test_pre}},
        lr_scheduler={'name': 'CosineAnnealingRestartLR', 'learning_rate': 2e-3, 'periods': [total_iters],
                      'eta_min': 1e-5},
        optimizer={'name': 'Adam', 'net_names': ['generator'], 'beta1': 0.9, 'beta2': 0.99},
        validate={'interval': total_iters, 'save_img': True,
                  'metrics': {'psnr': {'name': 'PSNR', 'crop_border': 4}}},
        log_config={'interval': 1, 'visiual_interval': total_iters}, snapshot_config={'interval': 3})
    cfg.update(top)
    return cfg


def load_cfg(tmp_path, cfg, name='tiny'):
    path = tmp_path / f'{name}.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


def only_run_dir(out):
    dirs = [d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d))]
    assert len(dirs) == 1, dirs
    return os.path.join(out, dirs[0])


def test_training_writes_the_paddlegan_run_folder(demo, tmp_path):
    out = tmp_path / 'out'
    trainer = Trainer(load_cfg(tmp_path, make_cfg(demo, out)), Options(seed=3))
    history = trainer.train()
    trainer.close()
    assert len(history) == 6 and set(history[0]) == {'l_pix'}
    run_dir = only_run_dir(out)
    assert re.fullmatch(r'tiny-\d{4}-\d\d-\d\d-\d\d-\d\d', os.path.basename(run_dir))
    files = set(os.listdir(run_dir))
    assert {'config.yaml', 'log.txt', 'iter_3_weight.pth', 'iter_3_checkpoint.pth', 'iter_6_weight.pth',
            'iter_6_checkpoint.pth', 'visual_train', 'visual_test'} <= files
    assert yaml.safe_load(open(os.path.join(run_dir, 'config.yaml')))['total_iters'] == 6
    log = open(os.path.join(run_dir, 'log.txt')).read()
    assert len(re.findall(r'^\[[-0-9: ]+\] Iter: \d/6 lr: .* l_pix: .* eta: ', log, re.M)) == 6
    assert re.search(r'^\[[-0-9: ]+\] Iter: 6 Metric psnr: \d+\.\d{4}$', log, re.M)
    assert trainer.last_metrics['psnr'] > 0
    assert os.listdir(os.path.join(run_dir, 'visual_train')) == ['iter_6.png']
    assert sorted(os.listdir(os.path.join(run_dir, 'visual_test'))) == ['iter_6_test_0000.png', 'iter_6_test_0001.png']
    state = ckpt.load_checkpoint(os.path.join(run_dir, 'iter_6_checkpoint.pth'))
    assert state['epoch'] == 6 and {'generator', 'optim', 'lr_scheduler', 'ema', 'seed', 'rng'} <= set(state)
    weights = ckpt.load_checkpoint(os.path.join(run_dir, 'iter_6_weight.pth'))
    assert list(weights) == ['generator']  # the EMA generator (RealESRNet keeps one)
    for k, v in state['ema']['generator'].items():
        assert torch.equal(v, weights['generator'][k])


def test_resume_continues_with_the_same_state_and_losses(demo, tmp_path):
    def cfg(out):  # batch 1 of 4 images: the resume point (after 2 batches) is mid-epoch
        c = make_cfg(demo, out, total_iters=4, snapshot_config={'interval': 2})
        c['dataset']['train']['batch_size'] = 1
        return load_cfg(tmp_path, c)

    full = Trainer(cfg(tmp_path / 'a'), Options(seed=5))
    full_losses = full.train()
    full.close()
    mid = os.path.join(only_run_dir(tmp_path / 'a'), 'iter_2_checkpoint.pth')
    resumed = Trainer(cfg(tmp_path / 'b'), Options(resume=mid))
    assert resumed.start_iter == 3 and resumed.seed == 5
    saved = ckpt.load_checkpoint(mid)
    for k, v in saved['optim']['state'][0].items():
        assert torch.equal(v, resumed.model.optimizers['optim'].state_dict()['state'][0][k])
    for k, v in saved['ema']['generator'].items():
        assert torch.equal(v, resumed.model.ema.state_dict()[k])
    rest = resumed.train()
    resumed.close()
    assert len(rest) == 2
    for a, b in zip(full_losses[2:], rest):
        assert a['l_pix'] == pytest.approx(b['l_pix'], rel=1e-6)
    end_a = ckpt.load_checkpoint(os.path.join(only_run_dir(tmp_path / 'a'), 'iter_4_weight.pth'))
    end_b = ckpt.load_checkpoint(os.path.join(only_run_dir(tmp_path / 'b'), 'iter_4_weight.pth'))
    for k, v in end_a['generator'].items():
        assert torch.allclose(v, end_b['generator'][k], atol=1e-7)


def test_gradient_accumulation_counts_optimizer_steps_as_iterations(demo, tmp_path):
    cfg = make_cfg(demo, tmp_path / 'out', total_iters=3, accumulate_steps=2)
    trainer = Trainer(load_cfg(tmp_path, cfg), Options(seed=1))
    trainer.train()
    trainer.close()
    adam_state = trainer.model.optimizers['optim'].state_dict()['state'][0]
    assert int(adam_state['step']) == 3
    assert trainer.model.lr_schedulers['optim'].last_epoch == 3


def test_nan_loss_stops_with_the_iteration_and_the_term(demo, tmp_path):
    trainer = Trainer(load_cfg(tmp_path, make_cfg(demo, tmp_path / 'out')), Options(seed=1))
    l1 = trainer.model.pixel_criterion
    trainer.model.pixel_criterion = lambda out, gt: l1(out, gt) * (float('nan') if trainer.model.current_iter == 2
                                                                   else 1.0)
    with pytest.raises(UserError, match=r'iteration 2: loss l_pix is nan'):
        trainer.train()
    trainer.close()


def test_ctrl_c_saves_the_last_finished_iteration_and_exits_130(demo, tmp_path, monkeypatch):
    from torch_impl.models import RealESRNet
    original = RealESRNet.train_iter

    def interrupted(self, optimizers=None):
        if self.current_iter == 3:
            raise KeyboardInterrupt
        return original(self, optimizers)

    monkeypatch.setattr(RealESRNet, 'train_iter', interrupted)
    cfg = make_cfg(demo, tmp_path / 'out', snapshot_config={'interval': 100})
    assert run(load_cfg(tmp_path, cfg), Options(seed=1)) == 130
    run_dir = only_run_dir(tmp_path / 'out')
    assert ckpt.load_checkpoint(os.path.join(run_dir, 'iter_2_checkpoint.pth'))['epoch'] == 2
    assert 'continue with --resume' in open(os.path.join(run_dir, 'log.txt')).read()


def test_debug_mode_runs_eight_iterations_logs_each_and_validates_at_four(demo, tmp_path):
    cfg = make_cfg(demo, tmp_path / 'out', total_iters=100, log_config={'interval': 50},
                   validate={'interval': 50, 'metrics': {'psnr': {'name': 'PSNR', 'crop_border': 4}}})
    cfg['lr_scheduler']['periods'] = [100]
    trainer = Trainer(load_cfg(tmp_path, cfg), Options(debug=True, seed=1))
    assert len(trainer.train()) == 8
    trainer.close()
    run_dir = only_run_dir(tmp_path / 'out')
    assert os.path.basename(run_dir).startswith('debug_tiny-')
    log = open(os.path.join(run_dir, 'log.txt')).read()
    assert len(re.findall(r'^\[[-0-9: ]+\] Iter: \d/8 lr', log, re.M)) == 8
    assert re.findall(r'^\[[-0-9: ]+\] Iter: (\d) Metric psnr', log, re.M) == ['4', '8']


def test_auto_resume_continues_the_newest_run_folder_or_starts_fresh(demo, tmp_path):
    out = tmp_path / 'out'
    cfg = load_cfg(tmp_path, make_cfg(demo, out, total_iters=4, snapshot_config={'interval': 2}))
    fresh = Trainer(cfg, Options(auto_resume=True, seed=2))
    assert fresh.start_iter == 1
    fresh.train()
    fresh.close()
    run_dir = only_run_dir(out)
    assert 'auto_resume: no iter_N_checkpoint' in open(os.path.join(run_dir, 'log.txt')).read()
    os.remove(os.path.join(run_dir, 'iter_4_checkpoint.pth'))  # as if killed before the last save
    again = Trainer(cfg, Options(auto_resume=True))
    assert again.start_iter == 3 and again.run_dir == run_dir and again.seed == 2
    assert len(again.train()) == 2
    again.close()
    assert only_run_dir(out) == run_dir
    assert os.path.isfile(os.path.join(run_dir, 'iter_4_checkpoint.pth'))


def test_evaluate_only_with_load_reproduces_the_end_of_training_metrics(demo, tmp_path):
    cfg = load_cfg(tmp_path, make_cfg(demo, tmp_path / 'out', total_iters=3))
    trainer = Trainer(cfg, Options(seed=4))
    trainer.train()
    trainer.close()
    weights = os.path.join(trainer.run_dir, 'iter_3_weight.pth')
    evaluator = Trainer(cfg, Options(evaluate_only=True, load=weights))
    metrics = evaluator.validate(evaluator.loaded_iter)
    evaluator.close()
    assert evaluator.loaded_iter == 3
    assert metrics['psnr'] == pytest.approx(trainer.last_metrics['psnr'], abs=1e-9)
    # a checkpoint given to --load is evaluated with its EMA generator, like the weight file
    from_ckpt = Trainer(cfg, Options(evaluate_only=True, load=weights.replace('weight', 'checkpoint')))
    assert from_ckpt.validate(3)['psnr'] == pytest.approx(metrics['psnr'], abs=1e-9)
    from_ckpt.close()


# ----------------------------------------------------------------------------- tools/main.py --backend torch
def main_py(*argv, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'main.py'), *argv, '--backend', 'torch'],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_cli_debug_then_evaluate_only_then_auto_resume(demo, tmp_path):
    out = tmp_path / 'out'
    cfg = make_cfg(demo, out, total_iters=100, log_config={'interval': 50},
                   validate={'interval': 50, 'metrics': {'psnr': {'name': 'PSNR', 'crop_border': 4}}})
    cfg['lr_scheduler']['periods'] = [100]
    cfg_path = tmp_path / 'clitiny.yaml'
    cfg_path.write_text(yaml.safe_dump(cfg))

    first = main_py('-c', str(cfg_path), '--debug', '--seed', '7', cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    final = re.findall(r'^\[[-0-9: ]+\] Iter: 8 Metric psnr: (\S+)$', first.stdout, re.M)
    assert len(final) == 1
    run_dir = only_run_dir(out)
    assert os.path.basename(run_dir).startswith('debug_clitiny-')

    weights = os.path.join(run_dir, 'iter_8_weight.pth')
    evaluated = main_py('-c', str(cfg_path), '--evaluate-only', '--load', weights, cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert re.findall(r'^\[[-0-9: ]+\] Iter: 8 Metric psnr: (\S+)$', evaluated.stdout, re.M) == final

    os.remove(os.path.join(run_dir, 'iter_8_checkpoint.pth'))
    resumed = main_py('-c', str(cfg_path), '--debug', '--auto_resume', cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert 'auto_resume: continuing' in resumed.stdout and 'iter_4_checkpoint.pth' in resumed.stdout
    assert re.findall(r'^\[[-0-9: ]+\] Iter: (\d)/8 lr', resumed.stdout, re.M) == ['5', '6', '7', '8']
    assert re.findall(r'^\[[-0-9: ]+\] Iter: 8 Metric psnr: (\S+)$', resumed.stdout, re.M) == final


def test_cli_user_error_is_one_line_and_exit_2(demo, tmp_path):
    cfg_path = tmp_path / 'bad.yaml'
    cfg_path.write_text(yaml.safe_dump(make_cfg(demo, tmp_path / 'out')))
    bad = tmp_path / 'w.pdparams'
    bad.write_bytes(b'x')
    res = main_py('-c', str(cfg_path), '--evaluate-only', '--load', str(bad), cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().count('\n') == 0 and res.stderr.startswith('error: ') and 'w.pdparams' in res.stderr


def test_amp_flag_on_cpu_trains_under_bfloat16_autocast(demo, tmp_path):
    trainer = Trainer(load_cfg(tmp_path, make_cfg(demo, tmp_path / 'out', total_iters=2)), Options(amp=True, seed=1))
    assert trainer.model.amp_dtype == torch.bfloat16
    seen = []
    net = trainer.model.net('generator')
    net.conv_last.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    history = trainer.train()
    trainer.close()
    assert torch.bfloat16 in seen and all(math.isfinite(h['l_pix']) for h in history)


def test_visualdl_gets_losses_lr_and_metrics(demo, tmp_path):
    pytest.importorskip('visualdl')
    from visualdl import LogReader
    trainer = Trainer(load_cfg(tmp_path, make_cfg(demo, tmp_path / 'out', total_iters=2, enable_visualdl=True)),
                      Options(seed=1))
    trainer.train()
    trainer.close()
    (record,) = [f for f in os.listdir(trainer.run_dir) if 'vdlrecords' in f]
    tags = LogReader(file_path=os.path.join(trainer.run_dir, record)).get_tags()
    assert {'l_pix', 'lr', 'metric/psnr'} <= set(tags.get('scalar', []))

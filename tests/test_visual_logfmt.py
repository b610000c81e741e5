"""Visual helpers (CHW float -> uint8, LQ/bicubic/SR/GT strip) and the training log line."""
import numpy as np
import pytest

from common_data.errors import ConfigError
from common_data.training.logfmt import TimeAverager, format_eta, log_line, metrics_line
from common_data.data.visual import GAP, chw_to_uint8, make_strip
from ppgan_compat import import_ppgan


# chw_to_uint8

def test_chw_to_uint8_hand_values_for_0_1():
    x = np.array([[[0.0, 1.0, 0.5, 1.5, -0.2, 0.2, 2.5 / 255]]], np.float32)  # 1 x 1 x 7
    np.testing.assert_array_equal(chw_to_uint8(x)[0, :, 0], [0, 255, 128, 255, 0, 51, 2])


def test_chw_to_uint8_hand_values_for_minus_1_1():
    x = np.array([[[-1.0, 0.0, 1.0, 0.5, -2.0, 3.0]]], np.float32)
    np.testing.assert_array_equal(chw_to_uint8(x, (-1.0, 1.0))[0, :, 0], [0, 128, 255, 191, 0, 255])
    np.testing.assert_array_equal(chw_to_uint8(x, "(-1., 1.)"), chw_to_uint8(x, (-1.0, 1.0)))


def test_chw_to_uint8_moves_channels_last_and_keeps_their_order():
    x = np.zeros((3, 2, 4), np.float32)
    x[0] = 1.0  # red plane
    out = chw_to_uint8(x)
    assert out.shape == (2, 4, 3) and out.dtype == np.uint8
    assert (out[..., 0] == 255).all() and not out[..., 1:].any()


def test_chw_to_uint8_takes_the_first_of_a_batch_and_repeats_grey():
    batch = np.stack([np.full((1, 2, 2), 0.2, np.float32), np.ones((1, 2, 2), np.float32)])
    np.testing.assert_array_equal(chw_to_uint8(batch), np.full((2, 2, 3), 51, np.uint8))
    np.testing.assert_array_equal(chw_to_uint8(np.full((2, 2), 0.2, np.float32)), np.full((2, 2, 3), 51, np.uint8))


def test_chw_to_uint8_refuses_an_empty_range():
    with pytest.raises(ConfigError, match="min_max"):
        chw_to_uint8(np.zeros((3, 2, 2), np.float32), (1.0, 1.0))


@pytest.mark.ppgan
@pytest.mark.parametrize("min_max", [(0.0, 1.0), (-1.0, 1.0)])
def test_chw_to_uint8_equals_paddlegans_tensor2img(min_max):
    visual = import_ppgan("ppgan.utils.visual")
    import paddle
    rng = np.random.default_rng(0)
    x = rng.uniform(min_max[0] - 0.2, min_max[1] + 0.2, (2, 3, 6, 5)).astype(np.float32)
    halves = (np.arange(30, dtype=np.float32) + 0.5) / 255  # exact .5 steps in [0, 1]
    x[0, 0] = (halves * (min_max[1] - min_max[0]) + min_max[0]).reshape(6, 5)
    want = visual.tensor2img(paddle.to_tensor(x), min_max)
    np.testing.assert_array_equal(chw_to_uint8(x, min_max), want)


# make_strip

def test_strip_is_lq_bicubic_sr_gt_with_white_gaps():
    rng = np.random.default_rng(1)
    lq = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    sr = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    gt = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    strip = make_strip(lq, sr, gt, labels=False)
    h, w = 16, 20
    assert GAP == 4 and strip.shape == (h, 4 * w + 3 * GAP, 3) and strip.dtype == np.uint8
    tiles = [strip[:, i * (w + GAP):i * (w + GAP) + w] for i in range(4)]
    np.testing.assert_array_equal(tiles[0], lq.repeat(4, axis=0).repeat(4, axis=1))  # nearest x4
    np.testing.assert_array_equal(tiles[2], sr)
    np.testing.assert_array_equal(tiles[3], gt)
    assert tiles[1].shape == (h, w, 3) and not np.array_equal(tiles[1], tiles[0])
    for i in range(3):
        assert (strip[:, i * (w + GAP) + w:(i + 1) * (w + GAP)] == 255).all()


def test_strip_without_gt_has_three_tiles_and_labels_keep_the_shape():
    lq = np.zeros((4, 4, 3), np.uint8)
    sr = np.zeros((16, 16, 3), np.uint8)
    assert make_strip(lq, sr, labels=False).shape == (16, 3 * 16 + 2 * GAP, 3)
    labelled = make_strip(lq, sr, sr)
    assert labelled.shape == (16, 4 * 16 + 3 * GAP, 3) and labelled.any()


def test_strip_accepts_grey_tiles_and_a_gt_of_another_size():
    lq = np.full((4, 4), 10, np.uint8)
    sr = np.full((16, 16, 3), 20, np.uint8)
    big_gt = np.full((17, 18, 3), 30, np.uint8)
    small_gt = np.full((15, 16), 30, np.uint8)
    assert make_strip(lq, sr, big_gt, labels=False).shape == (16, 4 * 16 + 3 * GAP, 3)
    strip = make_strip(lq, sr, small_gt, labels=False)
    gt_tile = strip[:, 3 * (16 + GAP):]
    assert (gt_tile[:15] == 30).all() and (gt_tile[15] == 255).all()


# log line

@pytest.mark.parametrize("seconds, text", [(0, "0:00:00"), (45.9, "0:00:45"), (3600, "1:00:00"),
                                           (90000, "1 day, 1:00:00"), (-5, "0:00:00"), (float("nan"), "unknown")])
def test_eta_format(seconds, text):
    assert format_eta(seconds) == text


def test_log_line_has_paddlegans_fields_in_order_and_the_eta():
    line = log_line(10, 100, 2e-4, {"l_pix": 0.123456, "l_g_gan": np.float32(0.5)}, batch_cost=0.5,
                    reader_cost=0.01, ips=8.0)
    assert line == ("Iter: 10/100 lr: 2.000e-04 l_pix: 0.12346 l_g_gan: 0.50000 batch_cost: 0.50000 sec "
                    "reader_cost: 0.01000 sec ips: 8.00000 images/s eta: 0:00:45")


def test_log_line_eta_is_batch_cost_times_iterations_left():
    assert log_line(1000, 91000, 1e-4, {}, batch_cost=1.0).endswith("eta: 1 day, 1:00:00")  # 90000 s = 25 h
    assert log_line(120, 100, 1e-4, {}, batch_cost=1.0).endswith("eta: 0:00:00")


def test_log_line_without_timings_has_no_eta():
    assert log_line(1, 10, 0.1, {"l_pix": 1}) == "Iter: 1/10 lr: 1.000e-01 l_pix: 1.00000"


def test_metrics_line():
    assert metrics_line(5000, {"psnr": 30.123456, "ssim": 0.9}) == "Iter: 5000 Metric psnr: 30.1235 Metric ssim: 0.9000"


def test_time_averager_mean_and_images_per_second():
    avg = TimeAverager()
    assert avg.average() == 0.0 and avg.ips() == 0.0
    avg.record(0.5, num_samples=4)
    avg.record(1.5, num_samples=4)
    assert avg.average() == 1.0 and avg.ips() == 4.0
    avg.reset()
    assert avg.average() == 0.0

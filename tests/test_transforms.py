"""PaddleGAN preprocess ops: each against numpy's own operation or a closed form."""
import random

import numpy as np
import pytest

from common_data.errors import ConfigError, DataError
from common_data.data.imageio import write_image
from common_data.data.transforms import (LoadImageFromFile, Normalize, PairedRandomHorizontalFlip,
                                    PairedRandomTransposeHW, PairedRandomVerticalFlip, SRPairedRandomCrop,
                                    Transpose, build_preprocess)

PAIR = ["image", "image"]


def rand_img(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def nearest_up(img, scale):
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def test_horizontal_flip_with_prob_1_mirrors_every_input_left_right():
    a, b = rand_img(4, 5, 1), rand_img(8, 10, 2)
    out = PairedRandomHorizontalFlip(prob=1.0, keys=PAIR)((a, b))
    assert np.array_equal(out[0], np.fliplr(a)) and np.array_equal(out[1], np.fliplr(b))


def test_vertical_flip_with_prob_1_mirrors_every_input_upside_down():
    a, b = rand_img(4, 5, 1), rand_img(8, 10, 2)
    out = PairedRandomVerticalFlip(prob=1.0, keys=PAIR)((a, b))
    assert np.array_equal(out[0], np.flipud(a)) and np.array_equal(out[1], np.flipud(b))


def test_transpose_hw_with_prob_1_swaps_height_and_width():
    a = rand_img(4, 5)
    out = PairedRandomTransposeHW(prob=1.0, keys=PAIR)((a, a))
    assert np.array_equal(out[0], np.swapaxes(a, 0, 1)) and out[1].shape == (5, 4, 3)


def test_random_ops_with_prob_0_leave_inputs_unchanged():
    a = rand_img(4, 5)
    for op in (PairedRandomHorizontalFlip, PairedRandomVerticalFlip, PairedRandomTransposeHW):
        out = op(prob=0.0, keys=PAIR)((a, a))
        assert np.array_equal(out[0], a) and np.array_equal(out[1], a)


def test_flip_draws_one_python_random_number_per_call():
    a = rand_img(4, 5)
    random.seed(3)
    expected = [random.random() < 0.5 for _ in range(6)]
    random.seed(3)
    op = PairedRandomHorizontalFlip(keys=PAIR)
    got = []
    for _ in range(6):
        out = op((a, a))
        got.append(not np.array_equal(out[0], a))
    assert got == expected


def test_without_keys_only_the_first_input_is_transformed_like_paddle_vision():
    a, b = rand_img(4, 5, 1), rand_img(4, 5, 2)
    out = PairedRandomHorizontalFlip(prob=1.0)((a, b))
    assert np.array_equal(out[0], np.fliplr(a)) and np.array_equal(out[1], b)


def test_sr_crop_gives_gt_patch_at_scale_times_the_lq_patch_location():
    lq = rand_img(10, 12)
    gt = nearest_up(lq, 4)
    op = SRPairedRandomCrop(scale=4, gt_patch_size=16, keys=PAIR)
    for seed in range(5):
        random.seed(seed)
        lq_p, gt_p = op((lq, gt))
        assert lq_p.shape == (4, 4, 3) and gt_p.shape == (16, 16, 3)
        assert np.array_equal(gt_p, nearest_up(lq_p, 4))


def test_sr_crop_uses_random_randint_for_top_then_left():
    lq = np.arange(10 * 12).reshape(10, 12, 1).repeat(3, axis=2).astype(np.uint8)
    random.seed(7)
    top, left = random.randint(0, 10 - 4), random.randint(0, 12 - 4)
    random.seed(7)
    lq_p, _ = SRPairedRandomCrop(scale=4, gt_patch_size=16, keys=PAIR)((lq, nearest_up(lq, 4)))
    assert np.array_equal(lq_p, lq[top:top + 4, left:left + 4])


def test_sr_crop_scale_list_adds_the_half_size_bicubic_gt():
    lq = rand_img(8, 8)
    out = SRPairedRandomCrop(scale=4, gt_patch_size=16, scale_list=True, keys=PAIR)((lq, nearest_up(lq, 4)))
    assert [o.shape for o in out] == [(4, 4, 3), (8, 8, 3), (16, 16, 3)]


def test_transpose_makes_chw_and_adds_a_channel_to_grey():
    a = rand_img(4, 5)
    out = Transpose(keys=PAIR)((a, a[:, :, 0]))
    assert np.array_equal(out[0], np.moveaxis(a, 2, 0)) and out[1].shape == (1, 4, 5)


def test_normalize_by_255_maps_uint8_to_float32_unit_range():
    a = np.moveaxis(rand_img(4, 5), 2, 0)
    out = Normalize(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0], keys=["image"])(a)
    assert out.dtype == np.float32 and np.allclose(out, a / 255.0, atol=1e-7)


def test_normalize_mean_std_per_channel_chw():
    a = np.ones((3, 2, 2), np.float32) * np.array([10.0, 20.0, 30.0], np.float32).reshape(3, 1, 1)
    out = Normalize(mean=[1.0, 2.0, 3.0], std=[3.0, 6.0, 9.0])(a)
    assert np.allclose(out[:, 0, 0], [3.0, 3.0, 3.0])


def test_load_image_reads_unicode_paths_as_uint8_rgb(tmp_path):
    img = rand_img(6, 7)
    path = tmp_path / "dossier é 画像" / "img 1.png"
    write_image(path, img)  # img is RGB
    results = LoadImageFromFile(key="lq")({"lq_path": path})
    assert results["lq"].dtype == np.uint8 and np.array_equal(results["lq"], img)
    assert results["lq_path"] == str(path) and results["lq_ori_shape"] == (6, 7, 3)


def test_load_image_to_rgb_false_gives_bgr(tmp_path):
    img = rand_img(3, 3)
    write_image(tmp_path / "a.png", img)
    out = LoadImageFromFile(key="gt", to_rgb=False)({"gt_path": str(tmp_path / "a.png")})["gt"]
    assert np.array_equal(out, img[:, :, ::-1])


def standard_pipeline(patch=16, scale=4):
    return [
        {"name": "LoadImageFromFile", "key": "lq"},
        {"name": "LoadImageFromFile", "key": "gt"},
        {"name": "Transforms", "input_keys": ["lq", "gt"], "pipeline": [
            {"name": "SRPairedRandomCrop", "gt_patch_size": patch, "scale": scale, "keys": PAIR},
            {"name": "PairedRandomHorizontalFlip", "keys": PAIR},
            {"name": "Transpose", "keys": PAIR},
            {"name": "Normalize", "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0], "keys": PAIR}]},
    ]


def test_build_preprocess_runs_the_standard_pipeline_to_chw_unit_float(tmp_path):
    lq = rand_img(5, 6)
    write_image(tmp_path / "lq.png", lq)
    write_image(tmp_path / "gt.png", nearest_up(lq, 4))
    out = build_preprocess(standard_pipeline())({"lq_path": tmp_path / "lq.png", "gt_path": tmp_path / "gt.png"})
    assert out["lq"].shape == (3, 4, 4) and out["gt"].shape == (3, 16, 16) and out["gt"].dtype == np.float32
    assert np.allclose(out["gt"], nearest_up(out["lq"].transpose(1, 2, 0), 4).transpose(2, 0, 1))
    assert isinstance(out["flip"], bool)  # PaddleGAN stores each op's random params in the results


def test_unknown_transform_name_is_a_config_error_listing_the_known_ones():
    cfg = [{"name": "Transforms", "input_keys": ["lq"], "pipeline": [{"name": "PairedRandomFlip"}]}]
    with pytest.raises(ConfigError, match=r"unknown transform name 'PairedRandomFlip'.*Known: .*PairedRandomHorizontalFlip") as e:
        build_preprocess(cfg)
    assert "preprocess[0].pipeline[0]" in str(e.value) and "\n" not in str(e.value)


def test_unknown_preprocess_op_is_a_config_error_listing_the_known_ones():
    with pytest.raises(ConfigError, match=r"'LoadImage'.*Known: LoadImageFromFile, Transforms"):
        build_preprocess([{"name": "LoadImage", "key": "lq"}])


def test_keys_other_than_image_are_a_config_error():
    with pytest.raises(ConfigError, match="keys"):
        build_preprocess([{"name": "Transforms", "input_keys": ["lq"], "pipeline": [{"name": "Transpose", "keys": ["boxes"]}]}])


def test_lq_times_scale_not_gt_names_both_files_and_sizes(tmp_path):
    write_image(tmp_path / "lq.png", rand_img(5, 6))
    write_image(tmp_path / "gt.png", rand_img(21, 24))
    with pytest.raises(DataError) as e:
        build_preprocess(standard_pipeline())({"lq_path": tmp_path / "lq.png", "gt_path": tmp_path / "gt.png"})
    msg = str(e.value)
    assert str(tmp_path / "lq.png") in msg and str(tmp_path / "gt.png") in msg
    assert "6x5" in msg and "24x21" in msg and "\n" not in msg


def test_lq_smaller_than_the_patch_is_a_data_error():
    lq = rand_img(3, 8)
    with pytest.raises(DataError, match=r"LQ is 8x3, smaller than the LQ patch 4x4"):
        SRPairedRandomCrop(scale=4, gt_patch_size=16, keys=PAIR)((lq, nearest_up(lq, 4)))

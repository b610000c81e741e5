"""SRDataset pairing, items and errors; build_dataset / loader_options / collate."""
import numpy as np
import pytest

from common_data.data.datasets import DATASETS, LOADER_KEYS, build_dataset, collate, loader_options
from common_data.errors import ConfigError, DataError
from common_data.data.imageio import read_raw, write_image
from common_data.data.sr_dataset import SRDataset, image_hw

TEST_PIPELINE = [
    {"name": "LoadImageFromFile", "key": "lq"},
    {"name": "LoadImageFromFile", "key": "gt"},
    {"name": "Transforms", "input_keys": ["lq", "gt"], "pipeline": [
        {"name": "Transpose", "keys": ["image", "image"]},
        {"name": "Normalize", "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0], "keys": ["image", "image"]}]},
]


def rand_img(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def make_pairs(root, names=("a", "b", "c"), scale=2, lq_tmpl="{}", ext=".png"):
    gt_dir, lq_dir = root / "gt", root / "lq"
    for i, name in enumerate(names):
        write_image(gt_dir / f"{name}{ext}", rand_img(8 * scale, 6 * scale, i))
        write_image(lq_dir / f"{lq_tmpl.format(name)}{ext}", rand_img(8, 6, 100 + i))
    return gt_dir, lq_dir


def test_pairs_files_by_name_in_sorted_order(tmp_path):
    gt_dir, lq_dir = make_pairs(tmp_path, names=("c", "a", "b"))
    ds = SRDataset(gt_folder=gt_dir, lq_folder=lq_dir, preprocess=TEST_PIPELINE, scale=2)
    assert len(ds) == 3
    assert [(i["lq_path"], i["gt_path"]) for i in ds.data_infos] == [
        (str(lq_dir / f"{n}.png"), str(gt_dir / f"{n}.png")) for n in "abc"]


def test_filename_tmpl_names_the_lq_file_from_the_gt_stem(tmp_path):
    gt_dir, lq_dir = make_pairs(tmp_path, names=("0001",), lq_tmpl="{}x2")
    ds = SRDataset(gt_folder=gt_dir, lq_folder=lq_dir, preprocess=TEST_PIPELINE, scale=2, filename_tmpl="{}x2")
    assert ds.data_infos[0]["lq_path"] == str(lq_dir / "0001x2.png")


def test_item_is_chw_float32_unit_range_of_the_files(tmp_path):
    gt_dir, lq_dir = make_pairs(tmp_path, names=("a",))
    item = SRDataset(gt_folder=gt_dir, lq_folder=lq_dir, preprocess=TEST_PIPELINE, scale=2)[0]
    assert set(item) == {"lq", "gt", "lq_path", "gt_path"}
    assert item["lq"].dtype == np.float32 and item["lq"].shape == (3, 8, 6) and item["gt"].shape == (3, 16, 12)
    assert np.allclose(item["lq"], rand_img(8, 6, 100).transpose(2, 0, 1) / 255.0, atol=1e-7)
    assert item["gt_path"] == str(gt_dir / "a.png")


def test_different_file_sets_name_a_few_missing_files(tmp_path):
    gt_dir, lq_dir = make_pairs(tmp_path, names=("a", "b"))
    for n in ("c", "d", "e", "f"):
        write_image(gt_dir / f"{n}.png", rand_img(16, 12, 0))
    write_image(lq_dir / "z.png", rand_img(8, 6, 0))
    with pytest.raises(DataError) as e:
        SRDataset(gt_folder=gt_dir, lq_folder=lq_dir, preprocess=TEST_PIPELINE, scale=2)
    msg = str(e.value)
    assert "no LQ for c.png, d.png, e.png (+1 more)" in msg and "z.png" in msg and "\n" not in msg


def test_missing_folder_names_it_and_the_demo_data_command(tmp_path):
    gt_dir, _ = make_pairs(tmp_path)
    with pytest.raises(DataError, match=r"lq_folder .*nope does not exist.*python tools/make_demo_data.py --output data/animeSR"):
        SRDataset(gt_folder=gt_dir, lq_folder=tmp_path / "nope", preprocess=TEST_PIPELINE, scale=2)


def test_empty_folder_names_it(tmp_path):
    _, lq_dir = make_pairs(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"gt_folder .*empty has no image files"):
        SRDataset(gt_folder=tmp_path / "empty", lq_folder=lq_dir, preprocess=TEST_PIPELINE, scale=2)


def test_wrong_scale_is_reported_lazily_with_both_files_and_sizes(tmp_path):
    gt_dir, lq_dir = make_pairs(tmp_path, names=("a",), scale=2)
    ds = SRDataset(gt_folder=gt_dir, lq_folder=lq_dir, preprocess=TEST_PIPELINE, scale=4)
    with pytest.raises(DataError) as e:
        ds[0]
    msg = str(e.value)
    assert str(lq_dir / "a.png") in msg and str(gt_dir / "a.png") in msg and "6x8" in msg and "12x16" in msg


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_check_sizes_checks_every_pair_up_front(tmp_path, ext):
    gt_dir, lq_dir = make_pairs(tmp_path, names=("a", "b"), ext=ext)
    assert SRDataset(gt_folder=gt_dir, lq_folder=lq_dir, preprocess=TEST_PIPELINE, scale=2).check_sizes() == 2
    write_image(lq_dir / f"b{ext}", rand_img(7, 6, 0))
    ds = SRDataset(gt_folder=gt_dir, lq_folder=lq_dir, preprocess=TEST_PIPELINE, scale=2)
    with pytest.raises(DataError, match=rf"LQ .*b{ext} is 6x7 but GT .*b{ext} is 12x16"):
        ds.check_sizes()


def test_image_hw_reads_the_png_header(tmp_path):
    write_image(tmp_path / "a.png", rand_img(5, 9, 0))
    assert image_hw(tmp_path / "a.png") == (5, 9)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_image_hw_of_a_turned_jpeg_is_the_shape_the_decoder_returns(tmp_path, orientation):
    from PIL import Image
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "turned.jpg"
    Image.fromarray(rand_img(5, 9, 0)).save(path, exif=exif.tobytes())
    assert image_hw(path) == read_raw(path).shape[:2] == ((9, 5) if orientation in (6, 8) else (5, 9))


def test_build_dataset_drops_loader_keys_and_builds_by_name(tmp_path):
    gt_dir, lq_dir = make_pairs(tmp_path)
    block = {"name": "SRDataset", "gt_folder": str(gt_dir), "lq_folder": str(lq_dir), "scale": 2,
             "preprocess": TEST_PIPELINE, "batch_size": 2, "num_workers": 0, "use_shared_memory": False}
    ds = build_dataset(block)
    assert isinstance(ds, SRDataset) and len(ds) == 3 and "SRDataset" in DATASETS
    assert {"batch_size", "num_workers", "use_shared_memory", "shuffle", "drop_last"} <= set(LOADER_KEYS)


def test_unknown_dataset_name_is_a_config_error_naming_where():
    with pytest.raises(ConfigError, match=r"unknown dataset name 'SRDatset' \(at dataset.test\).*SRDataset"):
        build_dataset({"name": "SRDatset"}, where="dataset.test")


def test_loader_options_follow_paddlegan_defaults():
    assert loader_options({"batch_size": 4, "num_workers": 2}, is_train=True) == {
        "batch_size": 4, "num_workers": 2, "shuffle": True, "drop_last": True}
    assert loader_options({}, is_train=False) == {"batch_size": 1, "num_workers": 0, "shuffle": False, "drop_last": False}
    assert loader_options({"shuffle": False}, is_train=True)["shuffle"] is False


def test_loader_options_reject_a_bad_batch_size():
    with pytest.raises(ConfigError, match=r"dataset.train.batch_size must be an integer >= 1"):
        loader_options({"batch_size": 0}, is_train=True)


def test_collate_stacks_arrays_and_keeps_strings_as_lists(tmp_path):
    gt_dir, lq_dir = make_pairs(tmp_path)
    ds = SRDataset(gt_folder=gt_dir, lq_folder=lq_dir, preprocess=TEST_PIPELINE, scale=2)
    batch = collate([ds[0], ds[1]])
    assert batch["lq"].shape == (2, 3, 8, 6) and np.array_equal(batch["gt"][1], ds[1]["gt"])
    assert batch["lq_path"] == [ds[0]["lq_path"], ds[1]["lq_path"]]

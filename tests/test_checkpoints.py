"""Checkpoint names (PaddleGAN's iter_N_weight / iter_N_checkpoint), the newest complete one, atomic writes."""
import errno
import os

import pytest

from common_data.weights.checkpoints import (atomic_write, checkpoint_name, list_checkpoints, newest_checkpoint,
                                     parse_checkpoint_name)
from common_data.errors import UserError


def touch(folder, name, data=b"x"):
    path = folder / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("iteration, kind, backend, name", [
    (5000, "weight", "paddle", "iter_5000_weight.pdparams"),
    (5000, "checkpoint", "paddle", "iter_5000_checkpoint.pdparams"),
    (30, "weight", "torch", "iter_30_weight.pth"),
    (0, "checkpoint", "torch", "iter_0_checkpoint.pth"),
])
def test_names_follow_paddlegan_and_parse_back(iteration, kind, backend, name):
    assert checkpoint_name(iteration, kind, backend) == name
    assert parse_checkpoint_name(name) == (iteration, kind, name.rsplit(".", 1)[1])
    assert parse_checkpoint_name(os.path.join("output_dir", "run-1", name)) == (iteration, kind, name.rsplit(".", 1)[1])


@pytest.mark.parametrize("name", ["iter_5_weight.pdparams.tmp-12", ".iter_5_weight.pdparams.tmp-12", "iter_5_ema.pth",
                                  "iter_x_weight.pth", "iter_5_weight.pdopt", "model_iter_5_weight.pth", "latest.pth"])
def test_other_names_do_not_parse(name):
    assert parse_checkpoint_name(name) is None


@pytest.mark.parametrize("args", [(5, "weights", "paddle"), (5, "weight", "jax"), (-1, "weight", "torch"),
                                  (2.5, "weight", "torch")])
def test_bad_name_parts_are_refused(args):
    with pytest.raises(ValueError):
        checkpoint_name(*args)


def test_list_is_numeric_oldest_first_and_ignores_temp_files_and_other_kinds(tmp_path):
    for n in (5, 10, 100):
        touch(tmp_path, checkpoint_name(n, "checkpoint", "paddle"))
    touch(tmp_path, checkpoint_name(200, "weight", "paddle"))
    touch(tmp_path, f".{checkpoint_name(300, 'checkpoint', 'paddle')}.tmp-123")
    touch(tmp_path, "iter_400_checkpoint.pdparams.tmp")
    touch(tmp_path, checkpoint_name(500, "checkpoint", "paddle"), b"")  # empty: a crash before atomic writes
    (tmp_path / checkpoint_name(600, "checkpoint", "paddle")).mkdir()
    found = list_checkpoints(tmp_path)
    assert [n for n, _ in found] == [5, 10, 100]
    assert found[-1][1] == str(tmp_path / "iter_100_checkpoint.pdparams")
    assert newest_checkpoint(tmp_path) == str(tmp_path / "iter_100_checkpoint.pdparams")
    assert [n for n, _ in list_checkpoints(tmp_path, "weight")] == [200]


def test_newest_filters_by_backend(tmp_path):
    touch(tmp_path, checkpoint_name(10, "checkpoint", "paddle"))
    touch(tmp_path, checkpoint_name(20, "checkpoint", "torch"))
    assert newest_checkpoint(tmp_path) == str(tmp_path / "iter_20_checkpoint.pth")
    assert newest_checkpoint(tmp_path, "paddle") == str(tmp_path / "iter_10_checkpoint.pdparams")
    assert newest_checkpoint(tmp_path, "torch") == str(tmp_path / "iter_20_checkpoint.pth")


def test_missing_or_empty_folder_has_no_newest(tmp_path):
    assert newest_checkpoint(tmp_path) is None
    assert newest_checkpoint(tmp_path / "nope") is None
    assert list_checkpoints(tmp_path / "nope") == []


def writer_of(data):
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    return write


def test_atomic_write_writes_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "run" / checkpoint_name(10, "checkpoint", "torch")
    atomic_write(path, writer_of(b"new"))
    assert path.read_bytes() == b"new"
    assert os.listdir(path.parent) == [path.name]


def half_writer(exc):
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half of the ")
        raise exc
    return write


def test_a_writer_that_fails_midway_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "iter_10_weight.pth"
    path.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="boom"):
        atomic_write(path, half_writer(RuntimeError("boom")))
    assert path.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == [path.name]


def test_disk_full_leaves_the_previous_file_intact_with_one_line(tmp_path):
    path = tmp_path / "iter_10_checkpoint.pdparams"
    path.write_bytes(b"previous")
    with pytest.raises(UserError) as info:
        atomic_write(path, half_writer(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and "disk is full" in msg and "untouched" in msg
    assert path.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == [path.name]


def test_read_only_folder_raises_one_line_and_keeps_the_previous_file(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / "iter_10_checkpoint.pth"
    path.write_bytes(b"previous")
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes")
        with pytest.raises(UserError) as info:
            atomic_write(path, writer_of(b"new"))
        msg = str(info.value)
        assert "\n" not in msg and str(path) in msg and "ermission" in msg
        assert path.read_bytes() == b"previous"
    finally:
        folder.chmod(0o755)


def test_permission_denied_from_the_writer_is_one_line_even_as_root(tmp_path):
    path = tmp_path / "iter_10_checkpoint.pth"
    path.write_bytes(b"previous")
    with pytest.raises(UserError) as info:
        atomic_write(path, half_writer(PermissionError(errno.EACCES, os.strerror(errno.EACCES))))
    assert "\n" not in str(info.value) and "Permission denied" in str(info.value)
    assert path.read_bytes() == b"previous"


def test_atomic_write_removes_temp_files_a_killed_writer_left_for_the_same_target(tmp_path):
    from common_data.weights.checkpoints import atomic_write
    target = tmp_path / "iter_4_checkpoint.pth"
    stale = tmp_path / ".iter_4_checkpoint.pth.tmp-99999"
    other = tmp_path / ".iter_6_checkpoint.pth.tmp-99999"
    stale.write_bytes(b"half")
    other.write_bytes(b"half")

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"complete")

    atomic_write(str(target), write)
    assert target.read_bytes() == b"complete"
    assert not stale.exists()
    assert other.exists()  # another target's temp is not this write's business

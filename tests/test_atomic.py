"""ernie_m.atomic: a file or directory appears under its name only once complete."""
import os

import pytest

from ernie_m.atomic import atomic_directory, atomic_file


def test_atomic_writes_leave_the_old_version_when_interrupted(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(str(target)) as temporary:
        (tmp_path / "model.tmp" / "a").write_text("first")
        assert temporary == str(tmp_path / "model.tmp") and not target.exists()
    with pytest.raises(RuntimeError):
        with atomic_directory(str(target)) as temporary:
            open(os.path.join(temporary, "a"), "w").write("half")
            raise RuntimeError("killed")
    assert (target / "a").read_text() == "first" and sorted(os.listdir(tmp_path)) == ["model"]
    path = tmp_path / "weights.bin"
    with pytest.raises(OSError):
        with atomic_file(str(path)) as temporary:
            open(temporary, "w").write("half")
            raise OSError("disk full")
    assert sorted(os.listdir(tmp_path)) == ["model"]

"""Zip extraction attacks are rejected before anything is written; a real ImageFolder loads."""
import io
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image

from training.data.zipdata import ZipLimits, ZipRejected, extract_zip_safely, load_zip_dataset


def _png(v: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((12, 12), v, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _zip(path, entries, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for item in entries:
            if isinstance(item, zipfile.ZipInfo):
                zf.writestr(item, b"../../etc/passwd" if stat.S_ISLNK(item.external_attr >> 16) else b"x")
            else:
                zf.writestr(*item)
    return str(path)


def _good_entries():
    return [(f"cats/{i}.png", _png(200)) for i in range(4)] + [(f"dogs/{i}.png", _png(30)) for i in range(4)]


def test_good_imagefolder_loads(tmp_path):
    z = _zip(tmp_path / "ok.zip", _good_entries() + [("__MACOSX/._x", b"junk"), ("notes.txt", b"hi")])
    split = load_zip_dataset(z, size=(28, 28))
    assert split.classes == ("cats", "dogs")
    assert split.train_x.shape[1:] == (1, 28, 28)
    assert len(split.train_x) + len(split.test_x) == 8


def test_wrapped_in_top_folder(tmp_path):
    z = _zip(tmp_path / "wrapped.zip", [(f"data/{n}", b) for n, b in _good_entries()])
    assert load_zip_dataset(z).classes == ("cats", "dogs")


@pytest.mark.parametrize("name", ["../evil.png", "/abs/evil.png", "cats/../../evil.png", "C:/evil.png", "a\\..\\b.png"])
def test_path_traversal_rejected_before_writing(tmp_path, name):
    z = _zip(tmp_path / "t.zip", _good_entries() + [(name, _png(1))])
    dest = tmp_path / "out"
    with pytest.raises(ZipRejected):
        extract_zip_safely(z, str(dest))
    assert not dest.exists() or not any(dest.rglob("*"))
    assert not (tmp_path / "evil.png").exists()


def test_symlink_rejected(tmp_path):
    link = zipfile.ZipInfo("cats/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    z = _zip(tmp_path / "s.zip", _good_entries() + [link])
    with pytest.raises(ZipRejected, match="symlink"):
        extract_zip_safely(z, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_zip_bomb_rejected(tmp_path):
    z = _zip(tmp_path / "b.zip", _good_entries() + [("cats/bomb.png", b"\x00" * (5 * 2**20))])
    with pytest.raises(ZipRejected, match="bomb"):
        extract_zip_safely(z, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_entry_count_and_size_limits(tmp_path):
    z = _zip(tmp_path / "many.zip", [(f"c{i % 2}/{i}.png", _png(i % 255)) for i in range(30)])
    with pytest.raises(ZipRejected, match="entries"):
        extract_zip_safely(z, str(tmp_path / "o1"), ZipLimits(max_entries=10))
    with pytest.raises(ZipRejected, match="per-file|expands"):
        extract_zip_safely(z, str(tmp_path / "o2"), ZipLimits(max_file_bytes=10))
    with pytest.raises(ZipRejected, match="expands to more"):
        extract_zip_safely(z, str(tmp_path / "o3"), ZipLimits(max_total_bytes=200))


def test_duplicates_and_not_a_zip_and_no_images(tmp_path):
    with zipfile.ZipFile(tmp_path / "dup.zip", "w") as zf:
        zf.writestr("cats/a.png", _png(1))
        with pytest.warns(UserWarning):
            zf.writestr("cats/a.png", _png(2))
    with pytest.raises(ZipRejected, match="twice"):
        extract_zip_safely(str(tmp_path / "dup.zip"), str(tmp_path / "o"))
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    with pytest.raises(ZipRejected, match="not a readable zip"):
        extract_zip_safely(str(tmp_path / "fake.zip"), str(tmp_path / "o"))
    z = _zip(tmp_path / "txt.zip", [("a/readme.txt", b"hello")])
    with pytest.raises(ZipRejected, match="no images"):
        extract_zip_safely(z, str(tmp_path / "o"))


def test_one_class_or_bad_image_rejected(tmp_path):
    z = _zip(tmp_path / "one.zip", [(f"cats/{i}.png", _png(9)) for i in range(3)])
    with pytest.raises(ZipRejected, match="two class"):
        load_zip_dataset(z)
    z = _zip(tmp_path / "badimg.zip", _good_entries() + [("cats/broken.png", b"\x89PNG garbage")])
    with pytest.raises(ZipRejected, match="broken.png"):
        load_zip_dataset(z)

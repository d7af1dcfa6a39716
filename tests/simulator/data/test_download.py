"""The ml-1m download path, against a real HTTP server on 127.0.0.1 serving a zip built here."""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile

import pytest

from recarena.simulator.data import DataError, load_dataset


@pytest.fixture
def served_folder(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def build_ml1m_zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-1m/ratings.dat", "1::1193::5::978300760\n2::1193::4::978298413\n2::661::3::978302109\n")
        archive.writestr("ml-1m/movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation\n")
        archive.writestr("ml-1m/users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
        archive.writestr("ml-1m/README", "a small stand-in with the real layout\n")


def test_ml1m_is_downloaded_once_then_read_from_cache(served_folder, tmp_path):
    root, base = served_folder
    build_ml1m_zip(root / "ml-1m.zip")
    home = tmp_path / "home"
    data = load_dataset("ml-1m", home=home, ml1m_url=f"{base}/ml-1m.zip")
    assert (data.name, data.n_users, data.n_items, data.n_interactions) == ("ml-1m", 2, 2, 3)
    assert (home / "raw" / "ml-1m" / "ratings.dat").exists()
    (root / "ml-1m.zip").unlink()  # a second load must not need the server
    again = load_dataset("ml-1m", home=home, ml1m_url=f"{base}/ml-1m.zip")
    assert again.n_interactions == 3


def test_a_failed_download_names_the_url(served_folder, tmp_path):
    _, base = served_folder
    with pytest.raises(DataError, match=r"ml-1m\.zip: download failed .*pass its folder instead"):
        load_dataset("ml-1m", home=tmp_path / "home", ml1m_url=f"{base}/ml-1m.zip")


def test_a_broken_archive_is_reported_and_leaves_nothing_behind(served_folder, tmp_path):
    root, base = served_folder
    (root / "ml-1m.zip").write_bytes(b"this is not a zip")
    home = tmp_path / "home"
    with pytest.raises(DataError, match="not a valid zip archive"):
        load_dataset("ml-1m", home=home, ml1m_url=f"{base}/ml-1m.zip")
    assert not (home / "raw" / "ml-1m").exists()

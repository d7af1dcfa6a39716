"""The built-in MovieLens-100K: real data from the RecBole 1.2.1 wheel, parsed and cached."""

import numpy as np
import pandas as pd

from recarena.simulator.data import Dataset, load_dataset, recarena_home


def test_shape_matches_the_published_dataset(ml100k):
    assert (ml100k.n_users, ml100k.n_items, ml100k.n_interactions) == (943, 1682, 100_000)
    info = ml100k.describe()
    assert info.rating_histogram == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201}
    assert f"{info.first_timestamp:%Y-%m-%d}" == "1997-09-20"
    assert f"{info.last_timestamp:%Y-%m-%d}" == "1998-04-22"
    assert abs(info.density - 100_000 / (943 * 1682)) < 1e-12


def test_items_and_users_are_typed(ml100k):
    toy_story = ml100k.items.iloc[ml100k.item_index("1")]
    assert toy_story["title"] == "Toy Story"
    assert toy_story["year"] == 1995
    assert toy_story["genres"] == ["Animation", "Children's", "Comedy"]
    assert toy_story["text"] == "Toy Story (1995); genres: Animation, Children's, Comedy"
    user = ml100k.users.iloc[ml100k.user_index("1")]
    assert (user["age"], user["gender"], user["occupation"], user["zip_code"]) == (24, "M", "technician", "85711")
    assert "Film-Noir" in ml100k.genre_vocabulary()


def test_interactions_have_contiguous_ids_and_are_sorted_by_time(ml100k):
    frame = ml100k.interactions
    assert frame["user"].between(0, ml100k.n_users - 1).all()
    assert frame["item"].between(0, ml100k.n_items - 1).all()
    assert frame["timestamp"].is_monotonic_increasing
    assert frame.dtypes.to_dict() == {"user": np.int32, "item": np.int32, "rating": np.float32, "timestamp": np.int64}
    # The first row of the file: user 196 rated item 242 a 3.
    first = frame[(frame["user"] == ml100k.user_index("196")) & (frame["item"] == ml100k.item_index("242"))]
    assert first["rating"].tolist() == [3.0] and first["timestamp"].tolist() == [881250949]


def test_second_load_reads_the_parquet_cache_and_gives_the_same_data(ml100k):
    cache = recarena_home() / "datasets" / "ml-100k"
    assert (cache / "interactions.parquet").exists() and (cache / "meta.json").exists()
    again = load_dataset("ml-100k")
    pd.testing.assert_frame_equal(again.interactions, ml100k.interactions)
    pd.testing.assert_frame_equal(again.users, ml100k.users)
    pd.testing.assert_frame_equal(again.items, ml100k.items)


def test_a_damaged_cache_is_rebuilt_with_a_warning(ml100k, tmp_path, caplog):
    home = tmp_path / "home"
    load_dataset("ml-100k", home=home)
    (home / "datasets" / "ml-100k" / "items.parquet").write_bytes(b"not parquet")
    with caplog.at_level("WARNING"):
        rebuilt = load_dataset("ml-100k", home=home)
    assert "rebuilding the dataset cache" in caplog.text
    pd.testing.assert_frame_equal(rebuilt.items, ml100k.items)
    assert isinstance(Dataset.load(home / "datasets" / "ml-100k"), Dataset)


def test_user_histories_are_in_time_order(ml100k):
    histories = ml100k.user_histories()
    assert sum(len(h) for h in histories) == ml100k.n_interactions
    user = ml100k.user_index("1")
    rows = ml100k.interactions[ml100k.interactions["user"] == user]
    assert histories[user].tolist() == rows["item"].tolist()

"""Every on-disk format loads from a folder; broken files fail in one line that names file, line and field."""

from __future__ import annotations

import pytest

from recarena.simulator.data import DataError, load_dataset
from recarena.simulator.data.formats import detect_format


def write(folder, name, text, encoding="utf-8"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding=encoding)
    return folder / name


def grouplens_100k(folder):
    write(folder, "u.data", "1\t10\t4\t881250949\n2\t10\t2\t881250950\n1\t20\t5\t881250951\n")
    genres = ["0"] * 19
    action, comedy = genres.copy(), genres.copy()
    action[1] = "1"
    comedy[5] = comedy[8] = "1"
    write(
        folder,
        "u.item",
        "10|Heat (1995)|01-Jan-1995||http://x|" + "|".join(action) + "\n"
        "20|Amélie (2001)|01-Jan-2001||http://y|" + "|".join(comedy) + "\n",
        encoding="latin-1",
    )
    write(folder, "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
    return folder


def test_grouplens_100k(tmp_path):
    data = load_dataset(grouplens_100k(tmp_path / "ml-100k"))
    assert (data.n_users, data.n_items, data.n_interactions) == (2, 2, 3)
    amelie = data.items.iloc[data.item_index("20")]
    assert (amelie["title"], amelie["year"], amelie["genres"]) == ("Amélie", 2001, ["Comedy", "Drama"])
    assert data.users.iloc[data.user_index("2")]["occupation"] == "other"
    assert data.interactions["rating"].tolist() == [4.0, 2.0, 5.0]


def test_ml1m(tmp_path):
    folder = tmp_path / "ml-1m"
    write(folder, "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    write(folder, "movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation|Children's|Musical\n", encoding="latin-1")
    write(folder, "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    data = load_dataset(folder)
    assert detect_format(folder) == "ml-1m"
    assert data.items.iloc[data.item_index("661")]["genres"] == ["Animation", "Children's", "Musical"]
    assert data.items.iloc[data.item_index("1193")]["year"] == 1975
    user = data.users.iloc[data.user_index("2")]
    assert (user["gender"], user["age"], user["occupation"]) == ("M", 56, "self-employed")
    assert data.interactions["timestamp"].is_monotonic_increasing


def test_ml_latest_small_with_quoted_titles(tmp_path):
    folder = tmp_path / "ml-latest-small"
    write(folder, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,3,0.5,964982224\n")
    write(folder, "movies.csv", 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n3,"Good, the Bad and the Ugly, The (1966)",(no genres listed)\n')
    data = load_dataset(folder)
    item = data.items.iloc[data.item_index("3")]
    assert (item["title"], item["year"], item["genres"]) == ("Good, the Bad and the Ugly, The", 1966, [])
    assert sorted(data.interactions["rating"].tolist()) == [0.5, 4.0, 4.5]


def test_recbole_atomic_files_with_implicit_feedback(tmp_path):
    folder = tmp_path / "shop"
    write(folder, "shop.inter", "user_id:token\titem_id:token\ttimestamp:float\nu1\tbook\t3\nu2\tpen\t1\nu1\tpen\t2\n")
    write(folder, "shop.item", "item_id:token\ttitle:token_seq\tcategories:token_seq\nbook\tA Book\tpaper reading\npen\tA Pen\twriting\n")
    data = load_dataset(folder)
    assert data.name == "shop" and not data.has_ratings
    assert data.interactions["rating"].tolist() == [1.0, 1.0, 1.0]
    assert data.items.iloc[data.item_index("book")]["genres"] == ["paper", "reading"]
    # Sorted by time: u2-pen (1), u1-pen (2), u1-book (3).
    assert [data.users["raw_id"][u] for u in data.interactions["user"]] == ["u2", "u1", "u1"]


def test_editing_a_source_file_invalidates_the_cache(tmp_path):
    folder = grouplens_100k(tmp_path / "ml-100k")
    assert load_dataset(folder).n_interactions == 3
    with open(folder / "u.data", "a") as f:
        f.write("2\t20\t1\t881250999\n")
    assert load_dataset(folder).n_interactions == 4


@pytest.mark.parametrize(
    "inter, needle",
    [
        ("user_id:token\trating:float\n1\t5\n", "field 'item_id': missing column"),
        ("user_id:token\titem_id:token\trating:float\n1\tbook\t5\n1\tbook\tfive\n", ":3: field 'rating': not a number: 'five'"),
        ("user_id:token\titem_id:token\trating:float\n1\tbook\t5\n1\tlamp\t4\n", ":3: field 'item': unknown item id 'lamp'"),
        ("", "file is empty"),
        ("user_id:token\titem_id:token\trating:float\n", "file is empty (no data rows)"),
        ("user_id:token\titem_id:token\trating:float\n1\tbook\n", ":2: expected 3 fields"),
        ("user_id:token\titem_id:token\ttimestamp:float\n1\tbook\t12.5x\n", "field 'timestamp': not a number"),
        ("user_id:id\titem_id:token\n1\tbook\n", "unknown field type 'id'"),
        ("user_id\titem_id:token\n1\tbook\n", ":1: field 'user_id': header 'user_id' has no type"),
        ("user_id:token\titem_id:token\trating:float\n1\tbook\t5\n1\tbook\t7\n", ":3: field 'rating': rating '7' is off the scale 0.5-5"),
        ("user_id:token\titem_id:token\trating:float\n1\tbook\t-3\n", ":2: field 'rating': rating '-3' is off the scale"),
    ],
)
def test_bad_atomic_data_gets_one_line_naming_file_line_and_problem(tmp_path, inter, needle):
    folder = tmp_path / "bad"
    write(folder, "bad.inter", inter)
    write(folder, "bad.item", "item_id:token\ttitle:token_seq\nbook\tA Book\n")
    with pytest.raises(DataError) as caught:
        load_dataset(folder)
    message = str(caught.value)
    assert "bad.inter" in message and needle in message and "\n" not in message


def test_bad_grouplens_line_names_the_line(tmp_path):
    folder = grouplens_100k(tmp_path / "ml-100k")
    write(folder, "u.data", "1\t10\t4\t881250949\n1\t20\t4.5.1\t881250949\n")
    with pytest.raises(DataError, match=r"u\.data:2: field 'rating': not a number: '4\.5\.1'"):
        load_dataset(folder)


@pytest.mark.parametrize("rating, needle", [("0", "'0' is off the scale 1-5 in steps of 1"), ("4.5", "'4.5' is off the scale 1-5"),
                                             ("6", "'6' is off the scale")])  # fmt: skip
def test_grouplens_ratings_off_the_release_scale_are_refused(tmp_path, rating, needle):
    folder = grouplens_100k(tmp_path / "ml-100k")
    write(folder, "u.data", f"1\t10\t4\t881250949\n1\t20\t{rating}\t881250949\n")
    with pytest.raises(DataError, match=rf"u\.data:2: field 'rating': rating {needle}"):
        load_dataset(folder)


def test_ml_latest_takes_half_stars_only(tmp_path):
    folder = tmp_path / "ml-latest-small"
    write(folder, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.25,964982703\n")
    write(folder, "movies.csv", "movieId,title,genres\n1,Toy Story (1995),Animation\n")
    with pytest.raises(DataError, match=r"ratings\.csv:2: field 'rating': rating '4\.25' is off the scale 0\.5-5 in steps of 0\.5"):
        load_dataset(folder)


def test_a_folder_without_known_files_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no known dataset files"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DataError, match="not a built-in dataset"):
        load_dataset(tmp_path / "missing")

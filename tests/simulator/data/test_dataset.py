"""The `Dataset`'s derived views: the item-by-genre matrix every genre figure reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from recarena.simulator.data import Dataset


def catalogue() -> Dataset:
    items = pd.DataFrame({"raw_id": ["a", "b", "c"], "genres": [["Drama", "Comedy"], [], ["Action", "Comedy", "Drama"]]})
    interactions = pd.DataFrame({"user": ["u", "u"], "item": ["a", "c"], "rating": 4.0, "timestamp": [1, 2]})
    return Dataset.from_frames("genres", interactions, items)


def test_each_item_spreads_one_unit_over_its_genres_in_vocabulary_order():
    data = catalogue()
    assert data.genre_vocabulary() == ["Action", "Comedy", "Drama"]
    assert data.genre_matrix().tolist() == [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0], pytest.approx([1 / 3, 1 / 3, 1 / 3])]
    assert ((data.genre_matrix() > 0) == np.array([[0, 1, 1], [0, 0, 0], [1, 1, 1]], bool)).all()  # the indicators


def test_a_catalogue_without_genres_has_one_empty_column():
    items = pd.DataFrame({"raw_id": ["a", "b"]})
    interactions = pd.DataFrame({"user": ["u"], "item": ["a"], "rating": 1.0, "timestamp": [1]})
    assert Dataset.from_frames("plain", interactions, items).genre_matrix().tolist() == [[0.0], [0.0]]


def test_the_matrix_is_built_once_read_only_and_shared_with_the_same_items():
    data = catalogue()
    matrix = data.genre_matrix()
    assert data.genre_matrix() is matrix
    assert data.with_interactions(data.interactions.iloc[:1]).genre_matrix() is matrix
    with pytest.raises(ValueError):
        matrix[0, 0] = 1.0

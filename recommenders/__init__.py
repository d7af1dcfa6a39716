"""Recommenders: one plug-in contract (`Recommender`), the classic models, faiss retrieval and evaluation.

    from recarena.recommenders import build_recommender, evaluate_recommender
    model = build_recommender("bpr", {"dim": 64}).fit(split.train_dataset(), valid=split.valid)
    print(evaluate_recommender(model, split, "test").to_text())

See base.py for the contract, registry.py for the names and checker.py for
the conformance check every model passes.
"""

from .base import Recommendations, Recommender, user_histories
from .checker import check_recommender
from .errors import ParamsError, RecommenderError
from .models import BPR, ItemKNN, LightGCN, MostPopular, RandomRecommender, SASRec
from .offline import evaluate_recommender, history_scorer
from .params import EmbeddingParams, Params, TrainedParams
from .registry import REGISTRY, broken_recommender_plugins, build_recommender, build_recommender_from_config, parse_assignments, recommender_class, recommender_names
from .retrieval import ItemIndex, retrieval_recall

__all__ = [
    "BPR", "REGISTRY", "EmbeddingParams", "ItemIndex", "ItemKNN", "LightGCN", "MostPopular", "Params", "ParamsError",
    "RandomRecommender", "Recommendations", "Recommender", "RecommenderError", "SASRec", "TrainedParams",
    "broken_recommender_plugins", "build_recommender", "build_recommender_from_config", "check_recommender", "evaluate_recommender",
    "history_scorer", "parse_assignments", "recommender_class", "recommender_names", "retrieval_recall", "user_histories",
]  # fmt: skip

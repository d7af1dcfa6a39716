"""The classic recommenders: baselines, neighbourhood, matrix factorisation, graph and sequential models."""

from .baselines import MostPopular, RandomRecommender
from .bpr import BPR
from .itemknn import ItemKNN
from .lightgcn import LightGCN
from .sasrec import SASRec

__all__ = ["BPR", "ItemKNN", "LightGCN", "MostPopular", "RandomRecommender", "SASRec"]

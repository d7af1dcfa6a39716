"""`recarena feedback-loop`: a population whose recommender learns from its own users (scenario.py) and its report."""

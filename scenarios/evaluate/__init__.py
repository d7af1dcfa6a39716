"""`recarena evaluate`: offline held-out evaluation of a recommender beside the random baseline (scenario.py)."""

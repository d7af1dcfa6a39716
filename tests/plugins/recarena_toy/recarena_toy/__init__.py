"""A toy recarena plugin (tests only): the `toy-pop` recommender and the `toy` user kind."""

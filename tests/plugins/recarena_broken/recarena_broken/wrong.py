"""Entry points that name the wrong things: a class that is no Recommender, a value that is no maker."""


class NotARecommender:
    name = "not-a-model"


NOT_CALLABLE = 42

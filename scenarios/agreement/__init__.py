"""`recarena agreement` (issue 18, in progress): does a simulated A/B order recommenders as real held-out behaviour does? orders.py holds the figures."""

"""Generative recommenders: TIGER (semantic IDs, constrained beam search) and HSTU."""

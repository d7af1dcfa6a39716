"""`toy` users: the kit's statistical user, made by a plugin's maker (the `recarena.users` contract)."""

from __future__ import annotations


def make_toy_user(kit, user_id, rng, llm):
    """make(kit, user_id, rng, llm) -> SimulatedUser; toy users need no LLM (no ``needs_llm``)."""
    user = kit.statistical_user(user_id, rng)
    user.toy = True
    return user

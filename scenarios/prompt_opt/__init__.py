"""Prompt optimisers for LLM rerankers behind one contract (RecPrompt, PO4ISR, equal-budget baselines)."""

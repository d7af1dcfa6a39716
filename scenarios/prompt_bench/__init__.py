"""`recarena prompt-bench`: LLM rerankers on the RecPrompt and PO4ISR protocols (protocols.py, scenario.py)."""

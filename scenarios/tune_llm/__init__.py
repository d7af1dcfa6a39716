"""`recarena tune-llm`: LoRA fine-tuning of the users' LLM on the training interactions (scenario.py)."""

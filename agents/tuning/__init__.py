"""LoRA fine-tuning of the users' LLM on training interactions (``recarena tune-llm``; the extra ``recarena[tune]``).

* `examples.py`: labelled examples from a training dataset, rendered with the LLM user's own prompts;
* `packing.py`: a user's questions packed behind one shared system turn, each seen as at inference;
* `base.py`: the base model (the embedded SmolLM2's GGUF, or a local Hugging Face folder), LoRA,
  `load_tuned` (base + adapter as a torch model) and `score_examples` / `p_yes` (probabilities of the options);
* `trainer.py`: the seeded training loop with atomic checkpoints and resume;
* `manifest.py`: the content-addressed adapter folder and its manifest;
* `pipeline.py`: `tune_lora`, all of it from a training dataset to an adapter folder.

Importing this package imports torch but neither transformers nor peft (they load when a model does).
"""

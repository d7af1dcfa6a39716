"""The questions put to the optimiser LLM (meta-prompts), shared by the methods.

Each asks for the new prompt between <START> and <END> and names the placeholders that must stay,
so `Loop.propose` can take the prompt out of any chatty answer and check it.
"""

from __future__ import annotations

from collections.abc import Sequence

from recarena.scenarios.prompt_opt.loop import END, START

SYSTEM = "You are an expert prompt engineer who improves the instructions given to a movie recommender."


def _keep(placeholders: Sequence[str]) -> str:
    return ", ".join("{" + p + "}" for p in placeholders)


def _rules(placeholders: Sequence[str], answer_format: str) -> str:
    return f"Keep the placeholders {_keep(placeholders)} exactly as written (the movies are filled in there) and {answer_format}."


def recprompt_messages(current: str, errors: str, best: str, best_score: float, placeholders: Sequence[str],
                       answer_format: str) -> list[dict[str, str]]:
    """RecPrompt's step: the current prompt, its mistakes, and the best prompt so far with its score."""
    user = (
        "A language model reranks candidate movies for a user with the prompt below (the CURRENT prompt).\n"
        f"CURRENT prompt:\n{START}\n{current}\n{END}\n\n"
        f"Here are cases where the CURRENT prompt ranked the movie the user watched next too low:\n\n{errors}\n\n"
        f"The BEST prompt so far (mean validation NDCG@10 {best_score:.3f}):\n{START}\n{best}\n{END}\n\n"
        "Think about why the CURRENT prompt failed on these cases, then write an improved prompt. "
        f"{_rules(placeholders, answer_format)}\nWrite the new prompt between {START} and {END}."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def reasons_messages(prompt: str, errors: str) -> list[dict[str, str]]:
    """PO4ISR's first question: why did this prompt make these mistakes?"""
    user = (
        f"A language model reranks candidate movies for a user with this prompt:\n{START}\n{prompt}\n{END}\n\n"
        f"It made these mistakes:\n\n{errors}\n\n"
        "Give up to three short reasons why the prompt may have led the model to these mistakes."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def refine_messages(prompt: str, errors: str, reasons: str, placeholders: Sequence[str], answer_format: str) -> list[dict[str, str]]:
    """PO4ISR's second question: rewrite the prompt to remove those reasons."""
    user = (
        f"A language model reranks candidate movies for a user with this prompt:\n{START}\n{prompt}\n{END}\n\n"
        f"It made these mistakes:\n\n{errors}\n\nLikely reasons:\n{reasons.strip() or '(none given)'}\n\n"
        f"Write an improved prompt that avoids these problems. {_rules(placeholders, answer_format)} "
        f"Write the new prompt between {START} and {END}."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def paraphrase_messages(prompt: str, placeholders: Sequence[str], answer_format: str) -> list[dict[str, str]]:
    """A paraphrase keeping meaning and placeholders (PO4ISR's augmentation; the best-of-N baseline's draws)."""
    user = (
        f"Paraphrase the following prompt: say the same thing in different words.\n{START}\n{prompt}\n{END}\n\n"
        f"{_rules(placeholders, answer_format)} Write the paraphrase between {START} and {END}."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]

"""Packing a user's questions into one sequence, each seen exactly as at inference.

At inference the LLM user sends one question per prompt: the system turn (its profile), then the
question, formatted by the model's chat template, and reads the next token's distribution over the
options. All of a user's questions share the system turn, so a packed sequence is::

    [shared prefix][question 1][question 2] ... [question n][padding]

with position ids restarting after the prefix for every question and an attention mask in which a
question sees the prefix and itself only (never another question). Each question's last token
then has exactly the context, the positions and hence the logits it has when sent alone (a test
checks this to float precision), while the prefix is computed once for n labels. The answer is
read at that last token: no answer token is appended, and the loss is the cross-entropy of the
real answer among the question's options (``Yes``/``No``, ``1``..``5``), renormalised over them
as `recarena.agents.llm` renormalises a `score` (each option is read at its first token, as the
embedded backend reads a one-token option).

The prefix is the longest common token prefix of the group's prompts (each tokenised whole by
`tokenizer.apply_chat_template`), so no assumption about where the template splits turns is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .examples import Example

MAX_OPTIONS = 5


@dataclass(frozen=True)
class Packed:
    """One sequence: token ids, position ids, which question each token belongs to (0: the prefix), and per label the
    position it is read at, its option token ids and the answer's index."""

    tokens: tuple[int, ...]
    positions: tuple[int, ...]
    segments: tuple[int, ...]
    reads: tuple[int, ...]
    options: tuple[tuple[int, ...], ...]
    answers: tuple[int, ...]
    examples: tuple[int, ...]
    """Indices of the examples (in the list given to `pack`) whose labels this sequence holds."""


def prompt_tokens(tokenizer, messages: Sequence[dict[str, str]]) -> list[int]:
    """The prompt's token ids as the chat template formats it, ready for the answer (generation prompt added)."""
    encoded = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
    ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
    return [int(t) for t in ids]


def option_tokens(tokenizer, options: Sequence[str]) -> tuple[int, ...]:
    """Each option's first token (as `EmbeddedBackend.score_options` reads it); ValueError when two share it."""
    firsts = tuple(int(tokenizer.encode(option, add_special_tokens=False)[0]) for option in options)
    if len(set(firsts)) != len(firsts):
        raise ValueError(f"the tokenizer gives the options {list(options)} shared first tokens {list(firsts)}")
    return firsts


def _common_prefix(rows: list[list[int]]) -> int:
    shortest = min(len(r) for r in rows)
    n = 0
    while n < shortest - 1 and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def pack(tokenizer, examples: Sequence[Example], max_tokens: int) -> list[Packed]:
    """The examples' questions packed by shared system turn, at most `max_tokens` tokens a sequence (a sequence always
    holds at least one question, even when that alone is longer)."""
    option_ids: dict[tuple[str, ...], tuple[int, ...]] = {}
    groups: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        groups.setdefault(example.messages[0]["content"], []).append(index)
        if example.options not in option_ids:
            option_ids[example.options] = option_tokens(tokenizer, example.options)
    packed: list[Packed] = []
    for members in groups.values():
        rows = [prompt_tokens(tokenizer, examples[i].messages) for i in members]
        cut = _common_prefix(rows)
        prefix = rows[0][:cut]
        batch: list[tuple[int, list[int]]] = []
        for index, row in zip(members, rows):
            if batch and cut + sum(len(s) for _, s in batch) + len(row) - cut > max_tokens:
                packed.append(_sequence(prefix, batch, examples, option_ids))
                batch = []
            batch.append((index, row[cut:]))
        if batch:
            packed.append(_sequence(prefix, batch, examples, option_ids))
    return packed


def _sequence(prefix: list[int], batch: list[tuple[int, list[int]]], examples: Sequence[Example],
              option_ids: dict[tuple[str, ...], tuple[int, ...]]) -> Packed:  # fmt: skip
    tokens, positions, segments = list(prefix), list(range(len(prefix))), [0] * len(prefix)
    reads, options, answers = [], [], []
    for k, (index, suffix) in enumerate(batch, start=1):
        tokens += suffix
        positions += range(len(prefix), len(prefix) + len(suffix))
        segments += [k] * len(suffix)
        reads.append(len(tokens) - 1)
        options.append(option_ids[examples[index].options])
        answers.append(examples[index].label)
    return Packed(tuple(tokens), tuple(positions), tuple(segments), tuple(reads), tuple(options), tuple(answers),
                  tuple(i for i, _ in batch))  # fmt: skip


@dataclass
class Batch:
    """Padded tensors of several packed sequences, with a 4-D additive attention mask."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor
    read_rows: torch.Tensor
    read_cols: torch.Tensor
    option_ids: torch.Tensor
    """(labels, MAX_OPTIONS) token ids, padded with 0 where `option_valid` is False."""
    option_valid: torch.Tensor
    answers: torch.Tensor


def collate(sequences: Sequence[Packed], pad_id: int, dtype: torch.dtype, device: torch.device | str) -> Batch:
    """Pad `sequences` to the longest; the mask lets a question token see the prefix and its own question, causally."""
    length = max(len(s.tokens) for s in sequences)
    n = len(sequences)
    ids = torch.full((n, length), pad_id, dtype=torch.long)
    pos = torch.zeros((n, length), dtype=torch.long)
    seg = torch.full((n, length), -1, dtype=torch.long)
    for row, s in enumerate(sequences):
        ids[row, : len(s.tokens)] = torch.tensor(s.tokens)
        pos[row, : len(s.tokens)] = torch.tensor(s.positions)
        seg[row, : len(s.tokens)] = torch.tensor(s.segments)
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    sees = (seg[:, :, None] == seg[:, None, :]) | (seg[:, None, :] == 0)
    allowed = causal[None] & sees & (seg[:, None, :] >= 0)
    allowed |= torch.eye(length, dtype=torch.bool)[None]  # padding sees itself: no row without a key
    mask = torch.zeros((n, 1, length, length), dtype=dtype)
    mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
    rows = [row for row, s in enumerate(sequences) for _ in s.reads]
    cols = [c for s in sequences for c in s.reads]
    opts = [o for s in sequences for o in s.options]
    option_ids = torch.zeros((len(opts), MAX_OPTIONS), dtype=torch.long)
    valid = torch.zeros((len(opts), MAX_OPTIONS), dtype=torch.bool)
    for k, o in enumerate(opts):
        option_ids[k, : len(o)] = torch.tensor(o)
        valid[k, : len(o)] = True
    answers = torch.tensor([a for s in sequences for a in s.answers], dtype=torch.long)
    to = lambda t: t.to(device)  # noqa: E731
    return Batch(to(ids), to(pos), to(mask), to(torch.tensor(rows)), to(torch.tensor(cols)), to(option_ids), to(valid), to(answers))


def option_logits(model, batch: Batch) -> torch.Tensor:
    """(labels, MAX_OPTIONS) logits of each label's options at its read position (-inf for padded options).

    Runs the model's decoder and applies the output embedding at the read positions only, to the option tokens only
    (a full-vocabulary head over every position would cost more than the rest of the step)."""
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = causal_lm.get_decoder()(input_ids=batch.input_ids, position_ids=batch.position_ids,
                                     attention_mask=batch.attention_mask, use_cache=False).last_hidden_state  # fmt: skip
    read = hidden[batch.read_rows, batch.read_cols]  # (labels, hidden)
    head = causal_lm.get_output_embeddings()
    weight = head.weight[batch.option_ids]  # (labels, options, hidden)
    logits = torch.einsum("lh,loh->lo", read, weight.to(read.dtype))
    if getattr(head, "bias", None) is not None:
        logits = logits + head.bias[batch.option_ids]
    return logits.float().masked_fill(~batch.option_valid, float("-inf"))


def option_loss(logits: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the answers among their options."""
    return torch.nn.functional.cross_entropy(logits, answers)

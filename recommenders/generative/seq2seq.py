"""TIGER's sequence-to-sequence transformer: a user's history as semantic-ID tokens in, the next ID out.

Vocabulary: 0 is padding, 1 starts the decoder and ends the encoder input, and
level ``l``'s codes take their own block of ids (``2 + offsets[l] + code``), so
code 5 of level 0 and code 5 of level 1 are different tokens. An item is the
``levels`` tokens of its semantic ID; each token's input vector is its token
embedding plus the embedding of its level and of its item's position in the
history (counted from the end, so the latest item is always position 0).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

PAD, BOS = 0, 1
SPECIAL_TOKENS = 2


class TigerTransformer(nn.Module):
    """Encoder-decoder over semantic-ID tokens; ``item_tokens[i + 1]`` is item i's token row (row 0: padding)."""

    def __init__(
        self, semantic_ids: np.ndarray, sizes: list[int], dim: int, heads: int, layers: int, inner_dim: int, dropout: float,
        max_len: int, pool_items: bool = True,
    ):  # fmt: skip
        super().__init__()
        self.pool_items = pool_items
        self.sizes = list(sizes)
        self.levels = len(sizes)
        self.max_len = max_len
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.offsets = [int(o) + SPECIAL_TOKENS for o in offsets]
        tokens = np.zeros((len(semantic_ids) + 1, self.levels), np.int64)
        tokens[1:] = np.asarray(semantic_ids, np.int64) + np.asarray(self.offsets)[None, :]
        self.register_buffer("item_tokens", torch.as_tensor(tokens), persistent=False)
        vocab = SPECIAL_TOKENS + int(sum(sizes))
        self.token_embedding = nn.Embedding(vocab, dim, padding_idx=PAD)
        self.level_embedding = nn.Embedding(self.levels, dim)
        self.position_embedding = nn.Embedding(max_len + 1, dim)
        options = {"dim_feedforward": inner_dim, "dropout": dropout, "activation": "gelu", "batch_first": True, "norm_first": True}
        encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(dim, heads, **options), layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False
        )
        self.transformer = nn.Transformer(dim, heads, custom_encoder=encoder, num_decoder_layers=layers, **options)
        self.head = nn.Linear(dim, vocab)
        self.dropout = nn.Dropout(dropout)
        for embedding in (self.token_embedding, self.level_embedding, self.position_embedding):
            nn.init.normal_(embedding.weight, std=0.02)
        with torch.no_grad():
            self.token_embedding.weight[PAD].zero_()

    def encode(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[batch, max_len]`` item ids + 1, left-padded with 0 -> encoder memory and its padding mask."""
        batch = history.shape[0]
        if self.pool_items:
            return self._encode_pooled(history)
        tokens = self.item_tokens[history].reshape(batch, -1)
        tokens = torch.cat([tokens, tokens.new_full((batch, 1), BOS)], 1)  # never all padding, even for no history
        levels = torch.arange(self.levels, device=history.device).repeat(self.max_len)
        levels = torch.cat([levels, levels.new_zeros(1)])
        slots = torch.arange(self.max_len - 1, -1, -1, device=history.device).repeat_interleave(self.levels)
        slots = torch.cat([slots, slots.new_full((1,), self.max_len)])
        hidden = self.token_embedding(tokens) + self.level_embedding(levels)[None] + self.position_embedding(slots)[None]
        padding = tokens == PAD
        memory = self.transformer.encoder(self.dropout(hidden), src_key_padding_mask=padding)
        return memory, padding

    def _encode_pooled(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One encoder position per item: the sum of its code tokens' embeddings (``levels`` x shorter)."""
        batch = history.shape[0]
        items = self.token_embedding(self.item_tokens[history]).sum(2)  # padding tokens embed to zero
        end = self.token_embedding(history.new_full((batch, 1), BOS))
        slots = torch.arange(self.max_len, -1, -1, device=history.device) - 1
        slots[-1] = self.max_len  # items count back from the latest (0); the end token has its own slot
        hidden = torch.cat([items, end], 1) + self.position_embedding(slots)[None]
        padding = torch.cat([history == 0, torch.zeros(batch, 1, dtype=torch.bool, device=history.device)], 1)
        return self.transformer.encoder(self.dropout(hidden), src_key_padding_mask=padding), padding

    def decode(self, codes: torch.Tensor, memory: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """Codes of the first ``t`` levels ``[batch, t]`` -> decoder states ``[batch, t + 1, dim]``; state ``j``
        predicts level ``j``'s code (read it with `level_logits`)."""
        batch, length = codes.shape
        tokens = torch.cat([codes.new_full((batch, 1), BOS), codes + torch.as_tensor(self.offsets[:length], dtype=torch.long, device=codes.device)[None]], 1)
        levels = torch.arange(length + 1, device=codes.device).clamp_max(self.levels - 1)
        hidden = self.dropout(self.token_embedding(tokens) + self.level_embedding(levels)[None])
        causal = nn.Transformer.generate_square_subsequent_mask(length + 1, device=codes.device, dtype=hidden.dtype)
        return self.transformer.decoder(hidden, memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=padding)

    def decode_beams(self, codes: torch.Tensor, memory: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """Beams ``[queries, beams, t]`` of one query each -> the last decoder state of every beam ``[queries, beams, dim]``.

        All beams of a query go through the decoder as one sequence whose
        self-attention mask is block-diagonal and causal, so each beam sees only
        its own prefix, while the query's encoder memory is attended once rather
        than copied per beam (beams x less cross-attention work)."""
        queries, beams, length = codes.shape
        offsets = torch.as_tensor(self.offsets[:length], dtype=torch.long, device=codes.device)
        tokens = torch.cat([codes.new_full((queries, beams, 1), BOS), codes + offsets], 2).reshape(queries, -1)
        levels = torch.arange(length + 1, device=codes.device).clamp_max(self.levels - 1).repeat(beams)
        hidden = self.token_embedding(tokens) + self.level_embedding(levels)[None]
        beam_of = torch.arange(beams, device=codes.device).repeat_interleave(length + 1)
        step_of = torch.arange(length + 1, device=codes.device).repeat(beams)
        visible = (beam_of[:, None] == beam_of[None, :]) & (step_of[None, :] <= step_of[:, None])
        mask = torch.zeros(visible.shape, dtype=hidden.dtype, device=codes.device).masked_fill(~visible, float("-inf"))
        out = self.transformer.decoder(hidden, memory, tgt_mask=mask, memory_key_padding_mask=padding)
        return out.reshape(queries, beams, length + 1, -1)[:, :, -1]

    def level_logits(self, hidden: torch.Tensor, level: int) -> torch.Tensor:
        """Logits of level `level`'s codes from decoder states ``[..., dim]``."""
        start = self.offsets[level]
        weight = self.head.weight[start : start + self.sizes[level]]
        bias = self.head.bias[start : start + self.sizes[level]]
        return hidden @ weight.T + bias

    def loss(self, history: torch.Tensor, target_codes: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of each level's code of the target IDs ``[batch, levels]``."""
        memory, padding = self.encode(history)
        hidden = self.decode(target_codes[:, :-1], memory, padding)
        losses = [
            nn.functional.cross_entropy(self.level_logits(hidden[:, level], level).float(), target_codes[:, level])
            for level in range(self.levels)
        ]
        return torch.stack(losses).mean()

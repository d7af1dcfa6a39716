"""Typed, validated hyper-parameters: one pydantic model per recommender.

Every field has a description (``--help`` and error messages show it). Unknown
names and bad values fail at the edge with one line naming the model, the field
and the valid choices. Values given as strings (CLI flags, ``key=value``) are
converted by pydantic's lax mode: ``"64"`` becomes ``64`` for an int field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ParamsError


class Params(BaseModel):
    """Parameters every recommender takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(0, description="seed for initialisation, sampling and dropout; a seed makes a run reproducible")
    threads: int = Field(
        1, ge=0, description="CPU threads torch uses in fit/score/update (1: no OpenMP stalls on a busy machine; 0: torch's default)"
    )
    progress: bool = Field(True, description="show a tqdm bar while fitting (models with nothing long to show ignore it)")

    @classmethod
    def build(cls, model_name: str, params: "Params | None" = None, overrides: dict[str, Any] | None = None) -> "Params":
        """Validate `overrides` on top of `params` (or the defaults); ParamsError on the first problem."""
        values = params.model_dump() if params is not None else {}
        values.update(overrides or {})
        unknown = sorted(set(values) - set(cls.model_fields))
        if unknown:
            raise ParamsError(f"{model_name}: unknown parameter {unknown[0]!r}; valid parameters: {', '.join(cls.model_fields)}")
        try:
            return cls(**values)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            if not field:  # a check across fields
                raise ParamsError(f"{model_name}: {first['msg'].removeprefix('Value error, ')}") from None
            got = first.get("input")
            raise ParamsError(f"{model_name}: parameter {field!r}: {first['msg']} (got {got!r})") from None

    @classmethod
    def describe(cls) -> str:
        """One line per field: name, type, default and description."""
        lines = []
        for name, field in cls.model_fields.items():
            kind = getattr(field.annotation, "__name__", str(field.annotation))
            lines.append(f"  {name} ({kind}, default {field.default!r}): {field.description}")
        return "\n".join(lines)


class TrainedParams(Params):
    """Parameters of models trained by gradient descent with early stopping."""

    epochs: int = Field(200, ge=1, description="most training epochs")
    patience: int = Field(10, ge=1, description="stop after this many validations without a better NDCG@10")
    eval_every: int = Field(1, ge=1, description="validate every this many epochs")
    batch_size: int = Field(2048, ge=1, description="training examples per gradient step")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty (Adam weight decay)")
    update_epochs: int = Field(2, ge=0, description="epochs of further training from the current state in update()")
    device: str = Field("auto", description="torch device: 'auto' (CUDA when present, else CPU), 'cpu', 'cuda', 'cuda:1'")


class EmbeddingParams(TrainedParams):
    """Parameters of models that score by an inner product of user and item vectors."""

    dim: int = Field(64, ge=1, le=4096, description="embedding dimension")
    index: Literal["exact", "ivf", "hnsw"] = Field(
        "exact", description="faiss index for recommend(): exact inner product, or IVF / HNSW (approximate; see retrieval_recall)"
    )
    ivf_lists: int = Field(0, ge=0, description="IVF cells; 0 picks about sqrt(n_items)")
    ivf_probe: int = Field(16, ge=1, description="IVF cells visited per query")
    hnsw_neighbours: int = Field(32, ge=4, description="HNSW graph degree (M)")
    hnsw_ef_search: int = Field(128, ge=1, description="HNSW search breadth (efSearch)")

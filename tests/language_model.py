"""A word-level tokenizer and a tiny causal language model, with the surface
Captum's LLMAttribution expects (no download)."""

import re
from types import SimpleNamespace
from typing import List, Optional

import torch
from torch import nn

WORDS = ["<unk>", "<sos>", "the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "park"]


class WordTokenizer:
    """Splits on spaces; one id per word of ``WORDS``; ``<sos>`` first."""

    sos, unk = 1, 0

    def encode(self, text: str, return_tensors: Optional[str] = None,
               add_special_tokens: bool = True):
        ids = ([self.sos] if add_special_tokens else []) + [
            WORDS.index(w) if w in WORDS else self.unk for w in text.split()]
        return torch.tensor([ids]) if return_tensors == "pt" else ids

    def decode(self, ids) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        ids = [ids] if isinstance(ids, int) else ids
        return " ".join(WORDS[i] for i in ids)

    def convert_ids_to_tokens(self, ids: List[int]) -> List[str]:
        return [WORDS[i] for i in ids]

    def convert_tokens_to_ids(self, tokens: List[str]) -> List[int]:
        return [WORDS.index(t) for t in tokens]

    def __call__(self, text: str, return_offsets_mapping: bool = False,
                 add_special_tokens: bool = True):
        spans = [m.span() for m in re.finditer(r"\S+", text)]
        return {"input_ids": self.encode(text, add_special_tokens=add_special_tokens),
                "offset_mapping": ([(0, 0)] if add_special_tokens else []) + spans}


class TinyCausalLM(nn.Module):
    """Embedding, a causal GRU and a linear head; ``forward`` returns ``.logits``."""

    def __init__(self, seed: int = 0, width: int = 16) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(len(WORDS), width)
        self.rnn = nn.GRU(width, width, batch_first=True)
        self.head = nn.Linear(width, len(WORDS))
        with torch.no_grad():
            self.head.weight.mul_(4.0)  # confident next-token predictions
        self.eval()

    def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:
        hidden, _ = self.rnn(self.embed(input_ids))
        return SimpleNamespace(logits=self.head(hidden))

"""References to attribute against: dinucleotide-preserving shuffles of one-hot sequences.

Genomics models are explained against shuffled copies of each sequence that keep
its dinucleotide counts (Altschul and Erickson 1985), averaged over 10-100 of
them as DeepLIFT-SHAP does. :func:`dinucleotide_shuffle` returns them in the
shape ``(N, K, C, L)`` that every path method takes as K references per example.
"""

from typing import List, Optional

import torch
from torch import Tensor

from captum_idg._validation import check_count, check_values


def dinucleotide_shuffle(
    sequences: Tensor, n_shuffles: int = 10, seed: Optional[int] = 0
) -> Tensor:
    r"""
    Shuffles of one-hot sequences that keep the count of every pair of
    adjacent letters, and the first and last letter.

    Args:

        sequences (Tensor): One-hot sequences of shape ``(N, C, L)`` (C letters,
                    e.g. 4 for DNA). An all-zero column (an unknown base) is a
                    letter of its own.
        n_shuffles (int, optional): Shuffles per sequence. Default: 10
        seed (int, optional): Seed of the shuffles; None draws from torch's
                    global generator. Default: 0

    Returns:
        *Tensor* of shape ``(N, n_shuffles, C, L)``, of the dtype and device of
        ``sequences``: pass it as ``baselines``.

    The shuffle is a random Eulerian walk over the sequence's transitions: the
    last transition out of each letter is kept (so the walk can always go on)
    and the others are permuted, as in Kandel et al. (1996) and DeepLIFT's
    ``dinuc_shuffle``.
    """
    check_values("sequences", sequences)
    if sequences.dim() != 3 or not ((sequences == 0) | (sequences == 1)).all() \
            or (sequences.sum(1) > 1).any():
        raise ValueError(f"sequences must be one-hot of shape (N, C, L), got shape "
                         f"{tuple(sequences.shape)} with values other than one 1 per column")
    check_count("n_shuffles", n_shuffles, 1)
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    letters = sequences.shape[1]
    tokens = torch.where(sequences.sum(1) > 0, sequences.argmax(1), letters).cpu()
    shuffled = torch.stack([
        torch.stack([_walk(row, letters + 1, generator) for _ in range(n_shuffles)])
        for row in tokens])
    one_hot = torch.nn.functional.one_hot(shuffled, letters + 1)[..., :letters]
    return one_hot.movedim(-1, 2).to(sequences.dtype).to(sequences.device)


def _walk(tokens: Tensor, letters: int, generator: torch.Generator) -> Tensor:
    r"""One random sequence with the transition counts of ``tokens``."""
    following: List[Tensor] = []
    for letter in range(letters):
        after = tokens[1:][tokens[:-1] == letter]
        if len(after) > 1:
            order = torch.randperm(len(after) - 1, generator=generator)
            after = torch.cat([after[:-1][order], after[-1:]])
        following.append(after)
    used = [0] * letters
    walk = [int(tokens[0])]
    for _ in range(len(tokens) - 1):
        letter = walk[-1]
        walk.append(int(following[letter][used[letter]]))
        used[letter] += 1
    return torch.tensor(walk)

"""A character tokenizer: text to integer ids and back, with padding, begin and end tokens."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

__all__ = ["CharTokenizer"]


class CharTokenizer:
    """Characters to integer ids and back, with padding, begin and end tokens.

    Ids 0, 1 and 2 are ``<pad>``, ``<bos>`` and ``<eos>``; the characters of
    ``alphabet`` follow in the order given.

    Args:
        alphabet: the characters the tokenizer knows, each once.

    Example:
        >>> tok = CharTokenizer("ab")
        >>> tok.encode("ba", eos=True)
        [4, 3, 2]
        >>> tok.decode([1, 4, 3, 2, 0])
        'ba'
        >>> tok.vocab_size
        5
    """

    PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, alphabet: str) -> None:
        if not alphabet:
            raise ValueError("a tokenizer needs a non-empty alphabet")
        if len(set(alphabet)) != len(alphabet):
            dupes = sorted({c for c in alphabet if alphabet.count(c) > 1})
            raise ValueError(f"alphabet has repeated characters: {dupes}")
        self.alphabet = alphabet
        self.tokens: list[str] = [self.PAD, self.BOS, self.EOS, *alphabet]
        self._ids = {c: i for i, c in enumerate(self.tokens)}

    @property
    def vocab_size(self) -> int:
        """V, the number of ids, special tokens included."""
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"CharTokenizer({self.alphabet!r})"

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of the characters of ``text``, optionally framed by ``<bos>`` / ``<eos>``."""
        ids = []
        for pos, ch in enumerate(text):
            if ch not in self._ids or ch in (self.PAD, self.BOS, self.EOS):
                raise ValueError(
                    f"character {ch!r} at position {pos} of {text!r} is not in the alphabet "
                    f"{self.alphabet!r}"
                )
            ids.append(self._ids[ch])
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """The text of ``ids``: stops at the first ``<eos>``, skips ``<pad>`` and ``<bos>``."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode takes one sequence (L,), got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        out = []
        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id {i} is outside the vocabulary of size {self.vocab_size}")
            if i == self.eos_id:
                break
            if i > self.eos_id:
                out.append(self.tokens[i])
        return "".join(out)

    def batch(
        self,
        texts: Sequence[str],
        *,
        bos: bool = False,
        eos: bool = False,
        length: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and right-pad a batch of texts.

        Args:
            texts: B strings.
            bos, eos: frame each text with ``<bos>`` / ``<eos>``.
            length: pad to this length (default: the longest encoded text).

        Shape:
            Returns ids (B, L) int64, padded with ``pad_id``, and lengths (B,).

        Example:
            >>> ids, lengths = CharTokenizer("ab").batch(["a", "abb"])
            >>> ids
            tensor([[3, 0, 0],
                    [3, 4, 4]])
            >>> lengths
            tensor([1, 3])
        """
        if len(texts) == 0:
            raise ValueError("batch needs at least one text")
        encoded = [self.encode(t, bos=bos, eos=eos) for t in texts]
        longest = max(len(e) for e in encoded)
        length = longest if length is None else length
        if length < longest:
            raise ValueError(f"length={length} is shorter than the longest text ({longest} ids)")
        ids = torch.full((len(texts), max(length, 1)), self.pad_id, dtype=torch.long)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = torch.tensor(e, dtype=torch.long)
        return ids, torch.tensor([len(e) for e in encoded], dtype=torch.long)

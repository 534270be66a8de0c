"""Log-mel spectrograms: a mel filterbank over ``torch.stft`` power, then the logarithm.

The mel scale (Stevens, Volkmann and Newman 1937; in the HTK form
:math:`m = 2595 \\log_{10}(1 + f / 700)`) spaces filters about evenly below
1 kHz and logarithmically above, as the ear resolves pitch. Speech recognisers
read 40 to 80 such bands per 10-20 ms instead of the STFT's hundreds of bins.

- :func:`hz_to_mel`, :func:`mel_to_hz` -- the HTK mel scale;
- :func:`mel_filterbank` -- triangular filters (M, F), each peaking at 1 on its centre;
- :func:`log_mel_spectrogram` -- waves (N, L) -> features (N, S, M) and frame counts (N,).

Shapes: N waves, L samples, S frames, F = n_fft // 2 + 1 bins, M mel bands.
"""

from __future__ import annotations

import torch

from attnlab._validate import shape_str

__all__ = ["hz_to_mel", "mel_to_hz", "mel_filterbank", "checked_stft", "log_mel_spectrogram"]


def hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    """The HTK mel scale, 2595 log10(1 + f / 700).

    Example:
        >>> round(float(hz_to_mel(1000.0)), 1)
        1000.0
    """
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: torch.Tensor | float) -> torch.Tensor:
    """The inverse of :func:`hz_to_mel`.

    Example:
        >>> round(float(mel_to_hz(hz_to_mel(440.0))), 6)
        440.0
    """
    return 700.0 * (10 ** (torch.as_tensor(mel, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None) -> torch.Tensor:
    r"""Triangular filters on the mel scale: filter m rises from centre m-1 to m, falls to m+1.

    The ``n_mels + 2`` edges are evenly spaced in mel from ``f_min`` to
    ``f_max``; filter m weighs bin f (at :math:`f r / N` Hz) by

    .. math::

        W_{mf} = \max\Big(0, \min\Big(\frac{h_f - e_{m}}{e_{m+1} - e_{m}},
        \frac{e_{m+2} - h_f}{e_{m+2} - e_{m+1}}\Big)\Big).

    Args:
        n_freqs: F, the STFT's bins (n_fft // 2 + 1).
        n_mels: M, the number of filters.
        sample_rate: Hz.
        f_min, f_max: the band covered (default: 0 to the Nyquist frequency).

    Shape:
        Returns (M, F) float32.

    Example:
        >>> W = mel_filterbank(129, 40, 11025)
        >>> tuple(W.shape), bool((W.sum(1) > 0).all()), float(W.max()) <= 1.0
        ((40, 129), True, True)
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    if n_freqs < 2 or n_mels < 1 or not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need n_freqs >= 2, n_mels >= 1 and 0 <= f_min < f_max <= "
                         f"sample_rate / 2; got {n_freqs}, {n_mels}, {f_min}, {f_max}")
    hz = torch.linspace(0, sample_rate / 2, n_freqs, dtype=torch.float64)  # (F,)
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)),
                                     n_mels + 2, dtype=torch.float64))  # (M + 2,)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (M, 1) each
    W = torch.minimum((hz - lo) / (mid - lo), (hi - hz) / (hi - mid)).clamp_min(0)  # (M, F)
    if bool((W.sum(1) == 0).any()):
        raise ValueError(f"{n_mels} mel filters are too many for {n_freqs} bins: some "
                         "filter covers no bin (use fewer mels or a larger n_fft)")
    return W.float()



def checked_stft(waves: torch.Tensor, lengths: torch.Tensor | None, n_fft: int,
                 hop_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The complex STFT of a batch of recordings, its inputs checked (Hann window, centred,
    zero-padded at the edges), and the lengths (all L when None).

    Shape:
        waves (N, L), lengths (N,) -> STFT (N, n_fft // 2 + 1, S) with S = 1 + L // hop_length,
        and lengths (N,).

    Example:
        >>> X, n = checked_stft(torch.zeros(2, 1000), None, 256, 128)
        >>> tuple(X.shape), n.tolist()
        ((2, 129, 8), [1000, 1000])
    """
    if not isinstance(waves, torch.Tensor) or waves.dim() != 2 or not waves.is_floating_point():
        got = shape_str(waves) if isinstance(waves, torch.Tensor) else type(waves).__name__
        raise ValueError(f"waves must be a float (N, L) tensor, got {got}")
    N, L = waves.shape
    if lengths is None:
        lengths = torch.full((N,), L, dtype=torch.long)
    if lengths.shape != (N,) or int(lengths.min()) < 1 or int(lengths.max()) > L:
        raise ValueError(f"lengths {shape_str(lengths)} must be (N,) = ({N},) with values in "
                         f"[1, L={L}]")
    if not 0 < hop_length <= n_fft:
        raise ValueError(f"need 0 < hop_length <= n_fft, got {hop_length}, {n_fft}")
    window = torch.hann_window(n_fft, dtype=waves.dtype, device=waves.device)
    X = torch.stft(waves, n_fft, hop_length, window=window, center=True, pad_mode="constant",
                   return_complex=True)  # (N, F, S)
    return X, lengths

def log_mel_spectrogram(waves: torch.Tensor, lengths: torch.Tensor | None = None, *,
                        sample_rate: int = 11025, n_fft: int = 256, hop_length: int = 220,
                        n_mels: int = 40, eps: float = 1e-6
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Log-mel features, :math:`\log(\sum_f W_{mf} |X_{s,f}|^2 + \epsilon)`.

    ``torch.stft`` with a Hann window of ``n_fft`` samples every ``hop_length``
    (``center=True`` with zero padding, so a wave gives the same frames alone
    and in a zero-padded batch), its power, :func:`mel_filterbank`, the log.

    Args:
        waves: (N, L) float samples, zero after each length.
        lengths: (N,) real samples (default: all L).
        sample_rate: Hz.
        n_fft, hop_length: window and hop in samples (the defaults: 23 ms every
            20 ms at 11,025 Hz).
        n_mels: M bands.
        eps: added to the power before the logarithm.

    Shape:
        waves (N, L) -> features (N, S, M) with S = 1 + L // hop_length, and
        frame counts (N,) = 1 + lengths // hop_length.

    Example:
        >>> x, n = log_mel_spectrogram(torch.zeros(2, 2205), torch.tensor([2205, 1000]))
        >>> tuple(x.shape), n.tolist()
        ((2, 11, 40), [11, 5])
    """
    X, lengths = checked_stft(waves, lengths, n_fft, hop_length)  # (N, F, S), (N,)
    W = mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate).to(waves)  # (M, F)
    mel = torch.einsum("mf,nfs->nsm", W, X.abs() ** 2)  # (N, S, M)
    return torch.log(mel + eps), 1 + lengths.to(waves.device) // hop_length


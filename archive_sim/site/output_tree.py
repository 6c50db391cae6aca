"""The output tree: the one place that writes, links, prunes and publishes site files.

Input: a site's files as (path, key, content), from the page writer. Output: a
staging folder beside ``output_dir`` that holds the new site, swapped in for the live
one in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``; two renames where the
kernel or file system lacks it), so a visitor or a crash sees either the previous
site or the new one, never a mix; and the new manifest (path -> content hash, stat,
key) for the state store. A folder that archive-sim did not make is never replaced
(a marker tells), and one output folder is built by one run at a time (``locked``).

A file whose key (a hash of everything that decides its content) is the one the
live site's copy was made from, or whose new content is the live copy's, is
hard-linked from the live site: it keeps its bytes, inode and mtime, so rsync or a
CDN uploads only what changed. The replaced site is kept aside (``.<out>.spare``)
and becomes the next staging folder; since its files may be hard links into the live
site, a file there is never written into, only unlinked and made anew (``_create``).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..crash_points import checkpoint
from ..state_store import SiteFile, StateStore

MARKER = ".archive-sim-site"
_MARKER_TEXT = "This folder is written by archive-sim and replaced on every build.\n"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class PublishError(RuntimeError):
    pass


def check_output_dir(out: Path) -> None:
    """Refuse to overwrite a non-empty folder that is not an archive-sim site."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise PublishError(
            f"output_dir = {str(out)!r}: exists and was not made by archive-sim; "
            f"choose another folder or remove it (nothing was written)")


def marker_text(site_id: str) -> str:
    """The marker of a site whose files ``site_id`` names (``OutputTree.seal``)."""
    return f"{_MARKER_TEXT}site {site_id}\n"


def site_id_of(folder: Path) -> str | None:
    """The id in ``folder``'s marker; None without a marker or with one that names none."""
    try:
        lines = (folder / MARKER).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    ids = [line[5:] for line in lines if line.startswith("site ")]
    return ids[0] if ids else None


def _previous(out: Path) -> Path:
    return out.parent / f".{out.name}.previous"


def _spare(out: Path) -> Path:
    return out.parent / f".{out.name}.spare"


def _retire(old_site: Path, out: Path) -> None:
    """Keep a site that is no longer live as the starting point of the next build."""
    spare = _spare(out)
    if spare.exists():
        shutil.rmtree(spare)
    os.replace(old_site, spare)


def staging_dir(out: Path) -> Path:
    """A folder beside ``out`` (same file system, so the swap is atomic) to build into.

    It starts as the site that the last build replaced, or what an interrupted
    build left: never live, so anything in it may be replaced. The render keeps
    only the files it would write itself and deletes the rest (``OutputTree.prune``).
    """
    previous = _previous(out)
    if not out.exists() and previous.exists():
        os.replace(previous, out)  # a two-rename publish was cut off between its renames
    if previous.exists():
        _retire(previous, out)
    staging = out.parent / f".{out.name}.staging"
    spare = _spare(out)
    if staging.exists():
        if spare.exists():
            shutil.rmtree(spare)
    elif spare.exists():
        os.replace(spare, staging)
    else:
        staging.mkdir(parents=True)
    return staging


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories; False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, f"cannot swap {a} and {b}: {os.strerror(code)}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(staging: Path, out: Path) -> None:
    """Make ``staging`` the live site at ``out``; the site it replaces is kept aside for the next build."""
    check_output_dir(out)
    checkpoint("publish:before")
    if out.exists() and _exchange(staging, out):
        checkpoint("publish:swapped")
        _fsync_dir(out.parent)
        _retire(staging, out)  # now holds the old site
        return
    previous = _previous(out)
    if out.exists():
        os.replace(out, previous)
    checkpoint("publish:between-renames")
    os.replace(staging, out)
    _fsync_dir(out.parent)
    if previous.exists():
        _retire(previous, out)


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """One build per output folder at a time, whatever its state folder: a second one
    stops at once with a clear error instead of publishing over the first."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise PublishError(f"output_dir = {str(out)!r}: another archive-sim run ({holder}) is publishing "
                               "there; wait for it to finish") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        yield


MEDIA = "media"  # thumbnails and atlases: every file named by its content


@dataclass
class TreeChanges:
    """What a tree (or a worker's share of it) placed: the new site's manifest but its
    media, its media files, the files written anew and how many were carried over."""

    files: dict[str, SiteFile] = field(default_factory=dict)
    media: set[str] = field(default_factory=set)
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    rendered: int = 0     # files whose content was made (the rest kept their key)

    def merge(self, other: TreeChanges) -> None:
        self.files.update(other.files)
        self.media |= other.media
        self.written.extend(other.written)
        self.unchanged += other.unchanged
        self.rendered += other.rendered


class OutputTree:
    """The new site's files in ``root`` (the staging folder), beside the ``live`` site.

    ``put`` places one file by its key; ``link_media`` the media files; ``prune`` then
    removes what the replaced site had and this one has not, and ``seal`` writes the
    marker. Any number of trees (one per process) may fill one staging folder, each
    with its own share of the paths; their ``changes`` are merged into one.
    """

    def __init__(self, root: Path, live: Path | None, manifest: dict[str, SiteFile] | None = None,
                 present: set[str] | None = None, live_media: set[str] | None = None) -> None:
        """``manifest``: the live site's files (more can be added with ``know``).
        ``present``: the files ``root`` is known to hold (the spare site's manifest, see
        ``site_id_of``), which ``prune`` then needs not look for. ``live_media``: the
        live site's media files, so that one it had already counts as unchanged."""
        self.root = root
        self.manifest = manifest or {}
        self.live_media = live_media or set()
        self.changes = TreeChanges()
        self._root = os.fspath(root)
        self._live = os.fspath(live) if live is not None else None
        # A staging folder that starts empty holds only what this build writes: nothing to prune.
        self._started_empty = _is_empty(root)
        self._present = present
        self._spare_id: str | None = None  # what the staging folder's marker named (``of_build``)
        self._folders: set[str] = set()
        self._media: tuple[dict[str, int], dict[str, int]] | None = None

    @classmethod
    def of_build(cls, staging: Path, live: Path) -> OutputTree:
        """The tree of a build into ``staging`` (``staging_dir``), beside the ``live`` site:
        made before anything is written into the folder; ``read_manifests`` then tells
        it what the live site and the folder hold."""
        # The staging folder is the spare site when its marker says so; the marker goes
        # before anything is written, so that a build cut off from here on leaves a folder
        # whose files are not known (and are found by walking it).
        spare_id = site_id_of(staging)
        (staging / MARKER).unlink(missing_ok=True)
        tree = cls(staging, live)
        tree._spare_id = spare_id
        return tree

    def read_manifests(self, store: StateStore) -> None:
        """The live site's manifest and media from ``store``, and the staging folder's
        files when it is the spare site (its marker named the spare's id)."""
        self.manifest = store.site_manifest()  # 800,000 rows at 100,000 items: taken, not copied
        self.live_media = store.site_media()
        self._present = store.spare_files(self._spare_id)

    def know(self, files: dict[str, SiteFile]) -> None:
        """Add rows of the live site's manifest (a worker asks for its paths' only)."""
        self.manifest.update(files)

    def take_changes(self) -> TreeChanges:
        """What this tree placed since the last call (a worker sends it after each task)."""
        changes, self.changes = self.changes, TreeChanges()
        return changes

    def put(self, rel: str, key: str, make: Callable[[], str | bytes]) -> bool:
        """Place the file ``rel`` whose content ``make`` returns and ``key`` decides.

        The live copy is kept, unmade, when it was made from the same key, or when
        the new content equals it. Return whether ``make`` was called.
        """
        known = self.manifest.get(rel)
        if known is not None and known.key == key and self._carry_over(rel, known):
            self.changes.files[rel] = known
            return False
        content = make()
        data = content.encode("utf-8") if isinstance(content, str) else content
        digest = hashlib.sha256(data).hexdigest()
        self.changes.rendered += 1
        if known is not None and known.sha256 == digest and self._carry_over(rel, known):
            self.changes.files[rel] = known._replace(key=key)
            return True
        self.changes.files[rel] = self._create(rel, data, digest, key)
        self.changes.written.append(rel)
        return True

    def put_data(self, rel: str, content: str | bytes) -> None:
        """A file whose content is its own key (JSON, static files)."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        self.put(rel, hashlib.sha256(data).hexdigest(), lambda: data)

    # Paths are strings from here on: at 100,000 items pathlib's parsing cost more
    # than the system calls it wraps.
    def _target(self, rel: str) -> str:
        path = f"{self._root}/{rel}"
        folder = os.path.dirname(path)
        if folder not in self._folders:
            # An item's folder is new and its parent made already: one mkdir, where
            # os.makedirs first looks for the parent (a stat call for each of 100,000).
            try:
                os.mkdir(folder)
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
            except FileExistsError:
                pass
            self._folders.add(folder)
        return path

    def _carry_over(self, rel: str, known: SiteFile) -> bool:
        """Link the live file at ``rel`` into the staging folder if it provably is the
        file ``known`` describes (nobody changed it since); return whether it was."""
        if self._live is None:
            return False
        live = f"{self._live}/{rel}"
        try:
            st = os.stat(live)
        except OSError:
            return False
        if (st.st_size, st.st_mtime_ns, st.st_ino) != (known.size, known.mtime_ns, known.inode):
            return False
        # The staging folder may hold the replaced site: a file there that is the live
        # file itself (same inode) stays; any other is replaced.
        if _inode(f"{self._root}/{rel}") != known.inode:
            target = self._target(rel)
            _unlink(target)
            os.link(live, target)
        self.changes.unchanged += 1
        return True

    def _create(self, rel: str, data: bytes, digest: str, key: str) -> SiteFile:
        target = self._target(rel)
        # Never write into a file that is there already: it may be a hard link to a
        # live file, and writing through it would change the live site.
        if not self._started_empty:
            _unlink(target)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # placed twice by this build
            os.unlink(target)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            st = os.fstat(fd)
        finally:
            os.close(fd)
        return SiteFile(digest, st.st_size, st.st_mtime_ns, st.st_ino, key)

    def link_media(self, cache: Path, wanted: Iterable[str], drawn_now: bool = False) -> None:
        """Hard-link the media files ``wanted`` (site-relative paths) from the cache.

        Their names say their content, so the same path always holds the same bytes:
        a file the staging folder already holds (the replaced site's media folder)
        is kept when it is the cache's file (same inode), any other is linked.
        ``drawn_now``: files may have been added to the cache since it was listed.
        """
        present, cached = self._media_listings(cache)
        cached_root = os.fspath(cache)
        for rel in wanted:
            source = cached.get(rel)
            if source is None:
                source = _inode(f"{cached_root}/{rel}") if drawn_now else None
                if source is None:
                    continue  # a thumbnail that could not be made: reported by make_media
            if present.get(rel) != source:  # missing, or a copy: link the cache's file
                target = self._target(rel)
                if rel in present:
                    os.unlink(target)
                _link_or_copy(f"{cached_root}/{rel}", target)
            # (A store written before media were kept apart has them in the manifest.)
            if rel in self.live_media or rel in self.manifest:
                self.changes.unchanged += 1
            else:
                self.changes.written.append(rel)
            self.changes.media.add(rel)

    def prune_media(self, cache: Path) -> None:
        """Remove every media file of the staging folder that ``link_media`` did not place."""
        present = self._media_listings(cache)[0]
        for rel in present.keys() - self.changes.media:
            os.unlink(f"{self._root}/{rel}")

    def _media_listings(self, cache: Path) -> tuple[dict[str, int], dict[str, int]]:
        """(staging, cache) media files -> inode, listed once per build."""
        if self._media is None:
            self._media = (_files_under(self.root, MEDIA), _files_under(cache, MEDIA))
        return self._media

    def prune(self) -> int:
        """Delete the files (and emptied folders) of the staging folder that this build did
        not place: those of the replaced site that the new one no longer has. The media
        folder is pruned by ``prune_media``."""
        if self._started_empty:
            return 0
        if self._present is not None:
            return self._prune_known(self._present)
        removed = 0
        bare: list[str] = []  # folders where no file stays: empty now, unless a subfolder is kept
        for path, folders, names in os.walk(self.root):
            if path == self._root:
                folders[:] = [f for f in folders if f != MEDIA]
                prefix = ""
            else:
                prefix = os.path.relpath(path, self.root) + "/"
            stays = False
            for name in names:
                if prefix + name in self.changes.files:
                    stays = True
                else:
                    os.unlink(os.path.join(path, name))
                    removed += 1
            if prefix and not stays:
                bare.append(path)
        _remove_empty_folders(bare)
        return removed

    def _prune_known(self, present: set[str]) -> int:
        """``prune`` for a staging folder whose files are known: no walk over 100,000 folders."""
        removed = 0
        folders: set[str] = set()
        for rel in present - self.changes.files.keys():
            if rel.startswith(f"{MEDIA}/"):
                continue
            try:
                os.unlink(f"{self._root}/{rel}")
                removed += 1
            except FileNotFoundError:
                pass
            folder = os.path.dirname(rel)
            while folder and folder not in folders:
                folders.add(folder)
                folder = os.path.dirname(folder)
        _remove_empty_folders(f"{self._root}/{folder}" for folder in folders)
        return removed

    def seal(self) -> str:
        """Write the marker, last: it names the site by its files but the media (an id
        that ``StateStore.replace_site_manifest`` records), so that the next build can
        trust the manifest of the folder it starts from. Return the id."""
        files = self.changes.files
        listing = "".join(f"{rel}\0{files[rel].sha256}\n" for rel in sorted(files.keys() - {MARKER}))
        site_id = hashlib.sha256(listing.encode("utf-8")).hexdigest()[:32]
        self.put_data(MARKER, marker_text(site_id))
        return site_id


def _link_or_copy(source: str, target: str) -> None:
    """Hard-link ``source`` at ``target`` (its folder exists); copy where links cannot be made."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _inode(path: str | Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _unlink(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _remove_empty_folders(folders: Iterable[str]) -> None:
    """Remove those of ``folders`` that are empty, deepest first (so a parent emptied
    by its child's removal goes too); one that still holds something stays."""
    for folder in sorted(folders, key=lambda f: f.count(os.sep), reverse=True):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def _is_empty(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except FileNotFoundError:
        return True


def _files_under(root: Path, folder: str) -> dict[str, int]:
    """Path (relative to ``root``) -> inode of the files anywhere under ``root / folder``.

    The inode comes with the directory listing (``os.scandir``): no file is stat'ed.
    """
    found: dict[str, int] = {}
    pending = [folder]
    while pending:
        rel = pending.pop()
        try:
            entries = list(os.scandir(root / rel))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(f"{rel}/{entry.name}")
            else:
                found[f"{rel}/{entry.name}"] = entry.inode()
    return found

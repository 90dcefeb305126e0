"""One storage root behind a pyarrow filesystem, so ``file://`` and ``s3://`` lakes behave the same."""

from __future__ import annotations

import enum
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pyarrow.fs as pafs

from lakeplane.config import S3Options, StorageConfig
from lakeplane.errors import ConfigError, StorageError


class Zone(enum.StrEnum):
    """The zones of the lake, in the order data moves through them."""

    RAW = "raw"
    PROCESSED = "processed"
    CURATED = "curated"


class LakeStorage:
    """Paths relative to the lake root, resolved on one filesystem.

    Args:
        fs: the pyarrow filesystem holding the lake.
        base: the root's path on ``fs`` (a local absolute path or ``bucket/prefix``).
        scheme: ``file`` or ``s3``.
        s3: how an S3 lake's endpoint is reached (for engines that open its files themselves).
    """

    def __init__(self, fs: pafs.FileSystem, base: str, scheme: str, s3: S3Options | None = None) -> None:
        self.fs = fs
        self.base = base.rstrip("/")
        self.scheme = scheme
        self.s3 = s3

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def root_uri(self) -> str:
        return f"{self.scheme}://{self.base}"

    def path(self, relative: str) -> str:
        """The path of ``relative`` on :attr:`fs`."""
        return f"{self.base}/{relative.lstrip('/')}" if relative else self.base

    def uri(self, relative: str) -> str:
        """The full URI of ``relative`` (what the catalog stores)."""
        return f"{self.scheme}://{self.path(relative)}"

    def fs_path(self, uri: str) -> str:
        """The path on :attr:`fs` of a URI inside this lake."""
        for prefix in (f"{self.scheme}://", "file:"):
            if uri.startswith(prefix):
                return uri[len(prefix) :]
        return uri

    def exists(self, relative: str) -> bool:
        return self._info(self.path(relative)).type != pafs.FileType.NotFound

    def size(self, relative: str) -> int:
        return int(self._info(self.path(relative)).size or 0)

    def _info(self, path: str) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(path)
        except OSError as exc:
            raise StorageError(f"cannot stat {self.scheme}://{path}: {exc}", path=path) from exc

    def list_files(self, relative: str) -> list[str]:
        """Relative paths of the files below ``relative`` (recursive, sorted); none if absent."""
        selector = pafs.FileSelector(self.path(relative), recursive=True, allow_not_found=True)
        try:
            infos = self.fs.get_file_info(selector)
        except OSError as exc:
            raise StorageError(f"cannot list {self.uri(relative)}: {exc}", path=relative) from exc
        prefix = self.base + "/"
        return sorted(info.path[len(prefix) :] for info in infos if info.type == pafs.FileType.File)

    def read_bytes(self, relative: str) -> bytes:
        with self.fs.open_input_stream(self.path(relative), compression=None) as stream:
            return bytes(stream.read())

    def open_input(self, relative: str) -> IO[bytes]:
        """A binary stream over ``relative`` (the raw bytes, not decompressed)."""
        try:
            return self.fs.open_input_stream(self.path(relative), compression=None)
        except OSError as exc:
            raise StorageError(f"cannot read {self.uri(relative)}: {exc}", path=relative) from exc

    def write_bytes(self, relative: str, data: bytes) -> None:
        self._make_parent(relative)
        try:
            with self.fs.open_output_stream(self.path(relative), compression=None) as out:
                out.write(data)
        except OSError as exc:
            raise StorageError(f"cannot write {self.uri(relative)}: {exc}", path=relative) from exc

    def put_file(self, local_path: Path, relative: str, *, move: bool = False) -> None:
        """Copy (or, on a local lake, move) a local file to ``relative``, streaming it byte for byte.

        pyarrow would (de)compress by file extension; raw batches must stay exactly as delivered.
        """
        self._make_parent(relative)
        try:
            if self.is_local and move:
                os.replace(local_path, self.path(relative))
                return
            target = self.path(relative)
            with open(local_path, "rb") as src, self.fs.open_output_stream(target, compression=None) as out:
                shutil.copyfileobj(src, out, length=8 << 20)
        except OSError as exc:
            raise StorageError(f"cannot write {self.uri(relative)}: {exc}", path=relative) from exc
        if move:
            local_path.unlink()

    def move(self, relative: str, to: str) -> None:
        """Rename a file of this lake (on S3 a server-side copy, then a delete)."""
        self._make_parent(to)
        try:
            self.fs.move(self.path(relative), self.path(to))
        except OSError as exc:
            raise StorageError(
                f"cannot move {self.uri(relative)} to {self.uri(to)}: {exc}", path=relative
            ) from exc

    def delete(self, relative: str) -> None:
        """Delete a file of this lake."""
        try:
            self.fs.delete_file(self.path(relative))
        except OSError as exc:
            raise StorageError(f"cannot delete {self.uri(relative)}: {exc}", path=relative) from exc

    def delete_folder(self, relative: str) -> None:
        """Delete a folder of this lake and everything below it (on S3, every key under the prefix)."""
        try:
            self.fs.delete_dir(self.path(relative))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {self.uri(relative)}: {exc}", path=relative) from exc

    def get_file(self, uri: str, local_path: Path) -> None:
        """Copy a file of this lake (by URI) to ``local_path``, byte for byte."""
        try:
            with (
                self.fs.open_input_stream(self.fs_path(uri), compression=None) as src,
                open(local_path, "wb") as out,
            ):
                shutil.copyfileobj(src, out, length=8 << 20)
        except OSError as exc:
            raise StorageError(f"cannot read {uri}: {exc}", path=uri) from exc

    def _make_parent(self, relative: str) -> None:
        if self.is_local:
            Path(self.path(relative)).parent.mkdir(parents=True, exist_ok=True)

    def walk_local(self, relative: str) -> Iterator[Path]:
        """Files below a local directory (for staging folders written by an engine)."""
        yield from sorted(p for p in Path(self.path(relative)).rglob("*") if p.is_file())


def open_storage(config: StorageConfig, project_dir: Path) -> LakeStorage:
    """Open the lake root named in ``config`` (relative folders resolve against ``project_dir``)."""
    root = config.root
    if root.startswith("s3://"):
        bucket_prefix = root[len("s3://") :].strip("/")
        if not bucket_prefix:
            raise ConfigError("storage.root: an s3:// root needs a bucket", key="storage.root")
        return LakeStorage(_s3_filesystem(config), bucket_prefix, "s3", config.s3)
    if "://" in root and not root.startswith("file://"):
        scheme = root.split("://", 1)[0]
        raise ConfigError(
            f"storage.root: unsupported scheme '{scheme}://'; use a folder or s3://bucket/prefix",
            key="storage.root",
        )
    path = Path(root.removeprefix("file://"))
    if not path.is_absolute():
        path = project_dir / path
    path.mkdir(parents=True, exist_ok=True)
    return LakeStorage(pafs.LocalFileSystem(), str(path.resolve()), "file")


def _s3_filesystem(config: StorageConfig) -> pafs.FileSystem:
    s3 = config.s3
    kwargs: dict[str, object] = {"region": s3.region}
    if s3.endpoint:
        scheme, _, host = s3.endpoint.partition("://")
        kwargs["endpoint_override"] = host or scheme
        kwargs["scheme"] = scheme if host else "https"
    if s3.access_key_id:
        kwargs["access_key"] = s3.access_key_id
        kwargs["secret_key"] = s3.secret_access_key or ""
    kwargs["force_virtual_addressing"] = not s3.path_style
    return pafs.S3FileSystem(**kwargs)

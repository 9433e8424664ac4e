"""Neptune's ``neptune.types``: ``File`` (``from unilog.compat.neptune.types import File``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from unilog.compat.neptune._errors import NotSupported
from unilog.errors import InvalidValue
from unilog.media import Image

__all__ = ["File"]

_IMAGE_SUFFIXES = ("png", "jpg", "jpeg")


class File:
    """Neptune's ``neptune.types.File``: a file to upload, or an image.

    ``File("model.pt")`` and ``File.from_path(...)`` name a file on disk;
    ``File.from_content(...)`` / ``File.from_stream(...)`` hold bytes;
    ``File.as_image(x)`` is an image (a :class:`unilog.Image`, made at once from a
    matplotlib figure, PIL image, numpy array or tensor, so the caller may change
    ``x`` afterwards). HTML and pickles have no unilog counterpart:
    ``as_html`` and ``as_pickle`` raise :class:`NotSupported`.
    """

    def __init__(self, path: str | os.PathLike):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"File(path) takes a file path, not {type(path).__name__}; "
                            "File.from_content takes bytes, File.as_image an image")
        self.path: str | None = os.fspath(path)
        self.content: bytes | None = None
        self.extension: str | None = Path(self.path).suffix.lstrip(".") or None
        self._image: Image | None = None

    @classmethod
    def _made(cls, *, content: bytes | None = None, extension: str | None = None,
              image: Image | None = None) -> File:
        file = cls.__new__(cls)
        file.path, file.content, file.extension, file._image = None, content, extension, image
        return file

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, extension: str | None = None) -> File:
        """The file at ``path`` (``extension`` overrides its suffix)."""
        file = cls(path)
        if extension is not None:
            file.extension = extension
        return file

    @classmethod
    def from_content(cls, content: str | bytes, *, extension: str | None = None) -> File:
        """A file holding ``content`` (a str is stored as UTF-8, extension "txt";
        bytes get extension "bin" unless given)."""
        if isinstance(content, str):
            return cls._made(content=content.encode("utf-8"), extension=extension or "txt")
        if isinstance(content, (bytes, bytearray, memoryview)):
            return cls._made(content=bytes(content), extension=extension or "bin")
        raise TypeError(f"File.from_content takes str or bytes, not {type(content).__name__}")

    @classmethod
    def from_stream(cls, stream: Any, *, seek: int | None = 0,
                    extension: str | None = None) -> File:
        """A file holding what ``stream`` reads from position ``seek`` to its end."""
        if seek is not None and getattr(stream, "seekable", lambda: False)():
            stream.seek(seek)
        return cls.from_content(stream.read(), extension=extension)

    @staticmethod
    def as_image(image: Any) -> File:
        """An image: a matplotlib figure, PIL image, numpy array (HxW or HxWxC,
        floats in [0, 1]) or tensor, read as :class:`unilog.Image` reads it."""
        return File._made(image=Image(image), extension="png")

    @staticmethod
    def as_html(value: Any) -> File:
        """Not supported: unilog has no HTML media."""
        raise NotSupported("File.as_html: unilog has no HTML media; write the HTML to a "
                           "file and upload it (run['report'].upload('report.html')), or "
                           "log a table as unilog.Table")

    @staticmethod
    def as_pickle(value: Any) -> File:
        """Not supported: unilog stores no pickled objects."""
        raise NotSupported("File.as_pickle: unilog stores no pickled objects; pickle the "
                           "object to a file and upload it (run['obj'].upload('obj.pkl'))")

    @classmethod
    def create_from(cls, value: Any) -> File:
        """``value`` as a File: a File as is, an image (figure, PIL image) by ``as_image``."""
        if isinstance(value, File):
            return value
        if _is_image_source(value):
            return cls.as_image(value)
        raise NotSupported(f"File.create_from({type(value).__name__}): only images "
                           "(matplotlib figures, PIL images) are converted; save other "
                           "objects to a file and use File(path)")

    def _series_image(self, path: str) -> Image:
        """This file as one image of the series at ``path``."""
        if self._image is not None:
            return self._image
        if self.path is not None and (self.extension or "").lower() in _IMAGE_SUFFIXES:
            return Image(self.path)
        raise InvalidValue(path, "a series of files holds images: File.as_image(x) or "
                           "File('<a .png or .jpeg file>'); upload other files with "
                           "run[path].upload(file)")

    def __repr__(self) -> str:
        if self._image is not None:
            return f"File.as_image({self._image!r})"
        if self.path is not None:
            return f"File({self.path!r})"
        size = len(self.content or b"")
        return f"File.from_content(<{size} bytes>, extension={self.extension!r})"


def _is_image_source(value: Any) -> bool:
    """A PIL image or a matplotlib figure, known by its module (neither is imported)."""
    module = type(value).__module__ or ""
    return ((module.startswith("PIL.") and hasattr(value, "convert"))
            or (module.startswith("matplotlib") and hasattr(value, "savefig")))

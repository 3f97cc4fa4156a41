"""What an uploaded file really is, read from its bytes (a "PDF" must start as a PDF does),
and its checks against an attachment kind: type and size."""

from __future__ import annotations

import hashlib
import io
import zipfile

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from opportunities.models import AttachmentKind, FileType

_OOXML = {
    "word/": FileType.DOCX,
    "xl/": FileType.XLSX,
}


def sniff(head: bytes, file) -> str:
    """The FileType of a file from its first bytes ('' when none we accept)."""
    if head.startswith(b"%PDF-"):
        return FileType.PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileType.PNG
    if head.startswith(b"\xff\xd8\xff"):
        return FileType.JPEG
    if head.startswith(b"PK\x03\x04"):
        try:
            file.seek(0)
            with zipfile.ZipFile(file) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return ""
        finally:
            file.seek(0)
        if "[Content_Types].xml" in names:
            for prefix, kind in _OOXML.items():
                if any(name.startswith(prefix) for name in names):
                    return kind
        return ""
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multi-byte character cut at the end of the sample is still text.
            if exc.start < len(head) - 3:
                return ""
        return FileType.CSV
    return ""


def check_upload(kind: AttachmentKind, upload) -> tuple[str, str]:
    """(file type, sha256) of `upload` if `kind` accepts it, else ValidationError on `file`
    saying what is wrong: too large, or not one of the kind's types."""
    limit = kind.max_size_mb * 1024 * 1024
    if upload.size > limit:
        raise ValidationError(
            {
                "file": _("The file is %(size).1f MB; %(kind)s takes at most %(limit)d MB.")
                % {"size": upload.size / 1024 / 1024, "kind": kind.name, "limit": kind.max_size_mb}
            }
        )
    if upload.size == 0:
        raise ValidationError({"file": _("The file is empty.")})
    upload.seek(0)
    head = upload.read(4096)
    upload.seek(0)
    file_type = sniff(head, upload if hasattr(upload, "seek") else io.BytesIO(head))
    if file_type not in kind.allowed_types:
        allowed = ", ".join(FileType(t).label for t in kind.allowed_types if t in FileType.values)
        raise ValidationError(
            {
                "file": _(
                    "%(kind)s takes %(allowed)s; this file is not one (its contents were read,"
                    " not its name)."
                )
                % {"kind": kind.name, "allowed": allowed}
            }
        )
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return file_type, digest.hexdigest()

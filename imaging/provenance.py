"""Provenance carried by every published file: XMP, PNG text chunks, a JSON sidecar.

What is written (the row's generation story): prompt, negative prompt, seed,
provider, model, template, template version, A/B variant, image id, and the IPTC
digital source type ``trainedAlgorithmicMedia``
(http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia, the value
IPTC recommends for images made by generative AI:
https://iptc.org/std/photometadata/documentation/userguide/#_guidance_for_using_generative_ai).

Where: an XMP packet (``Iptc4xmpExt:DigitalSourceType``, ``dc:description`` = the
prompt, ``xmp:CreatorTool``, and the other fields in this project's ``cp:``
namespace) embedded in JPEG (APP1), WebP and AVIF (the ``XMP `` chunk / item) and
PNG (an ``iTXt`` chunk keyed ``XML:com.adobe.xmp``, Adobe XMP Specification Part 3
§1.1.5), PNG ``tEXt``/``iTXt`` chunks with each field by name, and a JSON sidecar
stored next to the original (``generation.upload``). No EXIF is ever written: camera
data and location from a source never reach a published file.

Limits: an XMP packet in JPEG lives in one APP1 segment, at most 65,535 bytes less
the 2-byte length and the 29-byte ``http://ns.adobe.com/xap/1.0/`` header (Adobe XMP
Specification Part 3 §1.1.3: 65,502 bytes of packet); Pillow refuses more
("XMP data is too long"). Every embedded text field is cut to ``MAX_FIELD_CHARS``
characters (the cut fields are named in ``cp:Truncated``; the sidecar keeps them
whole) and the packet is kept under ``MAX_XMP_BYTES`` in every format.

Privacy: a ``Provenance`` whose ``prompt_private`` is set publishes no prompt and no
negative prompt anywhere: not in the embedded copy (``published()``) and not in the
JSON sidecar (``sidecar``), which is stored next to the published files, copied to the
backup and linked in every webhook. Only the database keeps a private prompt.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from PIL import Image
import struct
import zlib
import io
from PIL import ImageCms

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "cp": "http://ns.content-pipeline.org/provenance/1.0/",
}
PNG_XMP_KEY = "XML:com.adobe.xmp"
SOFTWARE = "content-pipeline"
#: the largest XMP packet written (bytes): under JPEG's 65,502-byte APP1 limit with room to spare
MAX_XMP_BYTES = 60_000
#: the longest text field embedded (characters); longer ones are cut and named in cp:Truncated
MAX_FIELD_CHARS = 4_000

#: field name -> XMP property in the ``cp:`` namespace
_XMP_FIELDS = {
    "prompt": "Prompt",
    "negative_prompt": "NegativePrompt",
    "seed": "Seed",
    "provider": "Provider",
    "model": "Model",
    "template": "Template",
    "template_version": "TemplateVersion",
    "variant": "Variant",
    "category": "Category",
    "image_id": "ImageId",
    "placeholder": "Placeholder",
    "truncated": "Truncated",
}


@dataclass(frozen=True)
class Provenance:
    """How an image was made. ``seed`` is the provider's seed (None when unknown)."""

    image_id: str
    prompt: str
    negative_prompt: str = ""
    seed: int | None = None
    provider: str | None = None
    model: str | None = None
    template: str | None = None
    template_version: int | None = None
    variant: str | None = None
    category: str | None = None
    placeholder: bool = False
    digital_source_type: str = DIGITAL_SOURCE_TYPE
    #: the prompt stays out of published files (template / category ``embed_prompt: false``)
    prompt_private: bool = False
    #: names of the fields cut to MAX_FIELD_CHARS in this (embedded) copy, comma-separated
    truncated: str | None = None

    @classmethod
    def of(cls, row: Any) -> Provenance:
        """From a ``storage.db.ImageRecord``."""
        return cls(
            image_id=row.image_id,
            prompt=row.prompt or "",
            negative_prompt=row.negative_prompt or "",
            seed=row.seed,
            provider=row.provider,
            model=row.model,
            template=row.template,
            template_version=row.template_version,
            variant=row.variant,
            category=row.category,
            placeholder=bool(row.is_placeholder),
            prompt_private=bool(getattr(row, "prompt_private", False)),
        )

    def published(self) -> Provenance:
        """The copy embedded in published files: no prompt when private, every text field
        cut to ``MAX_FIELD_CHARS`` (named in ``truncated``)."""
        values = self.as_dict()
        if self.prompt_private:
            values["prompt"] = ""
            values["negative_prompt"] = ""
        cut = []
        for name in ("prompt", "negative_prompt", "provider", "model", "template", "variant", "category"):
            value = values.get(name)
            if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
                values[name] = value[:MAX_FIELD_CHARS]
                cut.append(name)
        values["truncated"] = ",".join(cut) or None
        return Provenance(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text_fields(self) -> dict[str, str]:
        """PNG text chunks: every known field as text, plus ``Software``."""
        fields = {
            k: ("true" if v is True else "false" if v is False else str(v))
            for k, v in self.as_dict().items()
            if v is not None and v != "" and k != "prompt_private"
        }
        fields["Software"] = SOFTWARE
        return fields

    def xmp(self) -> bytes:
        """The XMP packet (UTF-8) describing this image, at most ``MAX_XMP_BYTES``: when the
        fields do not fit, the prompt and negative prompt are left out (named in
        ``cp:Truncated``; the sidecar has them)."""
        packet = self._xmp()
        if len(packet) > MAX_XMP_BYTES:
            packet = Provenance(**{**self.as_dict(), "prompt": "", "negative_prompt": "", "truncated": "prompt,negative_prompt"})._xmp()
        return packet

    def _xmp(self) -> bytes:
        values = self.as_dict()
        attrs = [f'xmlns:{p}="{uri}"' for p, uri in NS.items() if p not in ("x", "rdf")]
        attrs.append(f"Iptc4xmpExt:DigitalSourceType={quoteattr(self.digital_source_type)}")
        creator = "/".join(str(v) for v in (self.provider, self.model) if v) or "unknown"
        attrs.append(f"xmp:CreatorTool={quoteattr(f'{SOFTWARE} ({creator})')}")
        for name, prop in _XMP_FIELDS.items():
            value = values.get(name)
            if value is None or value == "":
                continue
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            attrs.append(f"cp:{prop}={quoteattr(text)}")
        joined = "\n    ".join(attrs)
        packet = (
            '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            f'<x:xmpmeta xmlns:x="{NS["x"]}">\n'
            f' <rdf:RDF xmlns:rdf="{NS["rdf"]}">\n'
            f'  <rdf:Description rdf:about=""\n    {joined}>\n'
            + (f'   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(self.prompt)}</rdf:li></rdf:Alt></dc:description>\n' if self.prompt else "")
            + "  </rdf:Description>\n"
            " </rdf:RDF>\n"
            "</x:xmpmeta>\n"
            '<?xpacket end="w"?>'
        )
        return packet.encode("utf-8")


def parse_xmp(packet: bytes | str) -> dict[str, str]:
    """The fields of an XMP packet written by ``Provenance.xmp`` (any XMP packet:
    ``digital_source_type``, ``description`` and every ``cp:`` property found).

    Raises ValueError when the packet is not well-formed XML.
    """
    text = packet.decode("utf-8") if isinstance(packet, bytes) else packet
    text = text.strip().strip("\x00")
    start = text.find("<x:xmpmeta")
    end = text.rfind("</x:xmpmeta>")
    if start < 0 or end < 0:
        raise ValueError("no x:xmpmeta element in the XMP packet")
    try:
        root = ET.fromstring(text[start : end + len("</x:xmpmeta>")])
    except ET.ParseError as exc:
        raise ValueError(f"malformed XMP packet: {exc}") from exc
    found: dict[str, str] = {}
    reverse = {prop: name for name, prop in _XMP_FIELDS.items()}
    for desc in root.iter(f"{{{NS['rdf']}}}Description"):
        for attr, value in desc.attrib.items():
            if attr == f"{{{NS['Iptc4xmpExt']}}}DigitalSourceType":
                found["digital_source_type"] = value
            elif attr.startswith(f"{{{NS['cp']}}}"):
                prop = attr.split("}", 1)[1]
                found[reverse.get(prop, prop)] = value
            elif attr == f"{{{NS['xmp']}}}CreatorTool":
                found["creator_tool"] = value
        for li in desc.iter(f"{{{NS['rdf']}}}li"):
            found.setdefault("description", li.text or "")
    return found


def read_provenance(path: Path) -> dict[str, str]:
    """The provenance embedded in a published file (XMP, then PNG text chunks), read with Pillow.

    Returns {} when the file carries none. Raises OSError when Pillow cannot open it.
    """
    with Image.open(path) as image:
        info = dict(image.info)
        texts = dict(getattr(image, "text", {}) or {})
    found: dict[str, str] = {}
    packet = info.get("xmp") or info.get(PNG_XMP_KEY) or texts.get(PNG_XMP_KEY)
    if packet:
        found.update(parse_xmp(packet))
    for key, value in texts.items():
        if key != PNG_XMP_KEY and isinstance(value, str):
            found.setdefault(key, value)
    return found


def sidecar(provenance: Provenance, *, row: Any, files: list[dict[str, Any]]) -> bytes:
    """The JSON sidecar (UTF-8, sorted keys: the same row gives the same bytes).

    ``files``: one mapping per stored file (name, key, format, width, height, bytes, sha256).
    A private prompt (``prompt_private``) is left out: the sidecar is published with the files.
    """
    values = provenance.as_dict()
    if provenance.prompt_private:
        values["prompt"] = ""
        values["negative_prompt"] = ""
    document = {
        "schema": "content-pipeline/provenance/1",
        "provenance": values,
        "idempotency_key": row.idempotency_key,
        "generated_at": row.generated_at.isoformat() if row.generated_at else None,
        "num_inference_steps": row.num_inference_steps,
        "guidance_scale": row.guidance_scale,
        "width": row.width,
        "height": row.height,
        "tags": list(row.tags or []),
        "quality_score": row.quality_score,
        "quality_metrics": row.quality_metrics,
        "phash": row.phash,
        "files": files,
    }
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False).encode("utf-8")


#: PNG chunks kept when a PNG is re-stamped: the image itself and how to draw it
_KEEP_CHUNKS = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"pHYs", b"sBIT", b"bKGD"}


def _png_chunk(kind: bytes, data: bytes) -> bytes:

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """The (type, data) chunks of the PNG ``data`` up to ``IEND``; None when one is cut short."""

    chunks: list[tuple[bytes, bytes]] = []
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            return None
        chunks.append((kind, body))
        pos += 12 + length
        if kind == b"IEND":
            break
    return chunks


def _keeps_pixels(kind: bytes, body: bytes) -> bool:
    """False for a chunk that changes what the pixels mean: ``eXIf`` (may rotate), a non-sRGB ``iCCP``."""

    if kind == b"eXIf":
        return False
    if kind != b"iCCP":
        return True
    try:
        _name, _, rest = body.partition(b"\0")
        profile = ImageCms.ImageCmsProfile(io.BytesIO(zlib.decompress(rest[1:])))
        return "srgb" in (ImageCms.getProfileDescription(profile) or "").lower()
    except (zlib.error, OSError, ImageCms.PyCMSError):
        return False


def _provenance_chunks(provenance: Provenance) -> bytes:
    """The provenance as PNG chunks: the XMP packet (``iTXt``), then one text chunk per field."""
    stamp = _png_chunk(b"iTXt", PNG_XMP_KEY.encode("latin-1") + b"\0\0\0\0\0" + provenance.xmp())
    for key, value in provenance.text_fields().items():
        if value.isascii():
            stamp += _png_chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
        else:
            stamp += _png_chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8"))
    return stamp


def restamp_png(data: bytes, provenance: Provenance | None, *, expected_size: tuple[int, int]) -> bytes | None:
    """``data`` (a PNG) with every metadata chunk dropped (text, EXIF, ICC, time, gamma,
    animation) and the provenance chunks (``iTXt`` XMP, one text chunk per field) put
    right after ``IHDR``; the pixel data is copied as it is (PNG spec §5: chunk layout).

    Returns None when the pixels would not be what ``imaging.decode`` made of them (an
    ``eXIf`` chunk that may rotate, a non-sRGB ICC profile, another size): the caller
    then re-encodes the decoded image instead.
    """

    chunks = _png_chunks(data)
    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        return None
    width, height = struct.unpack(">II", chunks[0][1][:8])
    if (width, height) != tuple(expected_size):
        return None
    if not all(_keeps_pixels(kind, body) for kind, body in chunks):
        return None
    stamp = _provenance_chunks(provenance) if provenance is not None else b""
    out = [data[:8], _png_chunk(*chunks[0]), stamp]
    out += [_png_chunk(kind, body) for kind, body in chunks[1:] if kind in _KEEP_CHUNKS]
    return b"".join(out)

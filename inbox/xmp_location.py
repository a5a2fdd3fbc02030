"""Blanks location inside one XMP packet of an open file, in place, keeping its size.

Every property whose local name holds `GPS`, `Latitude` or `Longitude` (`exif:GPSLatitude`,
`exifEX:GPS…`, a vendor's `CamGPSLatitude`, a drone's `Latitude`, Darwin Core's `decimalLatitude`),
is a short coordinate name (`geo:lat`, `lng`, `lat_long`…) or names a place (`photoshop:City`,
`State`, `Country`; `Iptc4xmpCore:Location`, `CountryCode`; `Iptc4xmpExt:LocationCreated`,
`LocationShown`, `dwc:dctermsLocation` with everything inside, and Darwin Core's place terms
written on their own, `dwc:locality`, `county`…; `xmpDM:shotLocation`), and every property of a
namespace that holds nothing but location (a phone's cell tower, a depth photo's EarthPose, by
the prefix the packet binds or by the one exiftool knows it by), in attribute or element form, is
overwritten with spaces of the same length; the packet stays well-formed. If such a name is still
there afterwards (UTF-16 packets, odd syntax, a byte in a name that exiftool drops, an element
without a prefix), it fails closed; so does a packet that binds the location namespaces to more than 8 prefixes besides
their usual ones, or to one longer than 128 bytes (real packets bind one or two short ones; each
goes into the patterns). When inbox/location.py has cut a motion photo's video off, the packet's
flags that announce it (Google's `GCamera:MotionPhoto="1"`, the older `MicroVideo`) are turned to
"0" as well, so that viewers do not look for a video that is gone, and its container directory
keeps only the files that remain.

XMP packets come from every container: a JPEG's APP1, a PNG's iTXt, a WebP's `XMP ` chunk, a
TIFF's tag 700 (inbox/tiff_blocks.py), a HEIF's XMP item.
"""

from __future__ import annotations

import re
from typing import BinaryIO

from inbox.fail_closed import LocationError, read_exact

MAX_XMP_BYTES = 4 * 1024 * 1024
# What marks bytes as XMP whatever holds them (exiftool's test for an APP1 of no known header).
LENIENT_XMP_MARK = re.compile(rb"<(exif:|\?xpacket)")
# Local names, whatever the prefix, as for GPS: editors (Lightroom's address lookup, exiftool) write
# the place a photo was taken as these, in the photoshop, IPTC Core and IPTC Extension schemas, and
# in Dynamic Media's (a video's shot location) and Darwin Core's (a naturalist's location struct, and
# its terms that name a place, which biodiversity tools also write on their own, outside the struct).
_XMP_PLACE_NAMES = (
    rb"City|State|Country|CountryCode|CountryName|Location|LocationCreated|LocationShown"
    rb"|Sublocation|ProvinceState|WorldRegion|shotLocation|dctermsLocation"
    rb"|continent|waterBody|islandGroup|island|stateProvince|county|municipality|locality|verbatimLocality"
    rb"|higherGeography|verbatimCoordinates|footprintWKT|locationRemarks"
    # The short coordinate names, in any case, taken whole (too short to look for inside a name): W3C
    # geo's `geo:lat` and `geo:long`, and what web and mapping tools write (`lng`, `lat_long`, `latlon`…).
    # Written as a tree, so that each colon of a packet costs two tries, not eleven.
    rb"|(?i:l(?:at(?:_?l(?:ng|ong?))?|ng|ong?)|coordinates)"
)
# Namespaces whose every property says where the photo was taken: the cell tower some Sony Ericsson
# phones note (country, network, area and tower: a place to within a few hundred metres), and the
# latitude and longitude of a Dynamic Depth photo's device (Google's EarthPose).
LOCATION_NAMESPACES = (b"http://developer.sonyericsson.com/cell/1.0/", b"http://ns.google.com/photos/dd/1.0/earthpose/")
# Their usual prefixes: exiftool reads these as those namespaces even where the packet binds them to
# nothing (or to something else), so their properties go wherever they appear.
LOCATION_PREFIXES = rb"cell|EarthPose"
# Each prefix a packet binds to them is tried at every `<` and space, and compiled into patterns (about
# 3 s per MiB of prefixes): thousands of them made a 4 MiB packet take 15 s to check, 8 take 0.6 s at most.
MAX_LOCATION_PREFIXES = 8
MAX_PREFIX_BYTES = 128
# Words that make a property location wherever they stand in its local name, in any case: exiftool's
# GPS tags and vendors' (`CamGPSLatitude`, DJI's `GpsLatitude`), a drone's or a mapping tool's
# `Latitude`, Darwin Core's `decimalLatitude` and `verbatimLongitude`; not a film's ISO speed latitude
# (EXIF's `ISOSpeedLatitudeyyy`), which is no place.
_LOCATION_WORDS = rb"(?i:GPS|(?<!ISOSpeed)Latitude|Longitude)"
# A local name with such a word in it, taken whole at once (a lookahead, then the same bytes again),
# so that a match that fails after it does not try every split of the name (quadratic in a long
# one; Python 3.10 has no possessive quantifier).
_LOCATION_WORD_NAME = rb"(?=(?P<local>[\w.-]*?" + _LOCATION_WORDS + rb"[\w.-]*))(?P=local)"
_LOCATION_PROPERTY_NAME = rb"[\w.-]+:(?:" + _LOCATION_WORD_NAME + rb"|(?:" + _XMP_PLACE_NAMES + rb")(?![\w.-]))"


def _prefix_binding(namespaces: tuple[bytes, ...]) -> re.Pattern:
    """The pattern of an `xmlns:prefix="…"` declaration of one of `namespaces`, the prefix its group 1."""
    return re.compile(rb"xmlns:([\w.-]+)\s*=\s*[\"'](?:" + b"|".join(map(re.escape, namespaces)) + rb")[\"']")


_LOCATION_NAMESPACE_PREFIX = _prefix_binding(LOCATION_NAMESPACES)


def _location_patterns(prefixes: bytes) -> tuple[re.Pattern, re.Pattern]:
    """The element and attribute patterns of the GPS and place properties, and of every property under
    `prefixes` (a pattern's alternatives: the location namespaces' prefixes)."""
    name = rb"(?:" + _LOCATION_PROPERTY_NAME + rb"|(?:" + prefixes + rb"):[\w.-]+)"
    element = re.compile(rb"<(" + name + rb")(?=[\s/>])[^<>]*>")
    return element, re.compile(rb"\s" + name + rb"\s*=\s*(?P<quote>[\"'])")


_XMP_LOCATION_ELEMENT, _XMP_LOCATION_ATTRIBUTE = _location_patterns(LOCATION_PREFIXES)
# A place name after its prefix's colon, or opening an element without a prefix (in a default namespace, or
# in none), which exiftool reads all the same (`XMP:City`).
_XMP_PLACE_PROPERTY = re.compile(rb"[:<](?:" + _XMP_PLACE_NAMES + rb")(?=[\s/>=])")
# A name still holding such a word after blanking: an element's, or an attribute's as exiftool reads
# one (the bytes before `="`, whatever they are). An attribute's is taken whole from where it starts,
# so each name is scanned once.
_XMP_LOCATION_WORD_NAME = re.compile(
    rb"<[^\s<>/]*"
    + _LOCATION_WORDS
    + rb"|(?<![\w.-])(?=[\w.-]*?"
    + _LOCATION_WORDS
    + rb")(?=(?P<name>[\w.-]+))(?P=name)\s*=\s*[\"']"
)
_LOCATION_WORD = re.compile(_LOCATION_WORDS)
_LOCATION_LOCAL_NAME = re.compile(_LOCATION_WORD_NAME + rb"|" + _XMP_PLACE_NAMES)  # fullmatched
# exiftool names a property by its letters, digits, "-" and "_" alone: "exif:G\xebPSLatitude" is its
# GPSLatitude. What a packet still names is judged with every other byte taken out.
_NOT_NAME_OR_MARKUP = re.compile(rb"[^\w\s.:<>=\"'/-]")
# The "1" of a motion-photo flag, attribute or element form: a video follows the picture. It starts
# at the colon, not at the namespace prefix: a prefix pattern would rescan every run of name
# characters from each of its bytes (seconds for one 64 KiB JPEG segment of letters).
_XMP_MOTION_FLAG = re.compile(rb":(?:MotionPhoto|MicroVideo)(?:\s*=\s*[\"']|>\s*)(1)(?=\s*(?:[\"']|</))")
# Google's container directory lists the files appended after the picture, in file order, the primary
# first: motion photos and Ultra HDR use the first namespace, Dynamic Depth (Pixel portraits) the second.
CONTAINER_NAMESPACES = (b"http://ns.google.com/photos/1.0/container/", b"http://ns.google.com/photos/dd/1.0/container/")
_CONTAINER_PREFIX = _prefix_binding(CONTAINER_NAMESPACES)
_RDF_ITEM = re.compile(rb"<rdf:li(?=[\s/>])[^<>]*>")
# What may follow a tag's name, for _tag_end.
_CLOSING_TAG_REST = re.compile(rb"\s*>")
_DIRECTORY_TAG_REST = re.compile(rb"(?=[\s>])[^<>]*>")


def blank_xmp_location(file: BinaryIO, start: int, end: int, *, items_kept: int | None = None) -> bool:
    """Overwrite the GPS and place properties of the XMP packet in file[start:end] with spaces; True if any.

    `items_kept`: what followed the picture was cut off, and only that many files of the image's
    container directory remain (the primary image and the images an MPF index lists). Then the
    motion-photo flags say "0" and the directory's later items are blanked too (and count as a
    change), so that no reader looks for the video, depth map or original that is gone, or
    counts back from the file's end past them.
    """
    if end - start > MAX_XMP_BYTES:
        raise LocationError(f"the XMP packet is larger than {MAX_XMP_BYTES} bytes")
    packet = read_exact(file, start, end - start)
    element, attribute, prefixes = _XMP_LOCATION_ELEMENT, _XMP_LOCATION_ATTRIBUTE, _location_prefixes(packet)
    if prefixes != LOCATION_PREFIXES:
        element, attribute = _location_patterns(prefixes)
    spans: list[tuple[int, int]] = []
    covered = 0
    for match in element.finditer(packet):
        if match.start() < covered:
            continue  # inside an element already blanked; skipping it keeps the scan linear
        close = match.end()
        if not match.group(0).endswith(b"/>"):
            close = _tag_end(packet, b"</" + match.group(1), _CLOSING_TAG_REST, match.end())
            if close < 0:
                raise LocationError("an XMP location element is not closed")
        spans.append((match.start(), close))
        covered = close
    for match in attribute.finditer(packet):
        close = packet.find(match.group("quote"), match.end()) + 1
        if close <= 0:
            raise LocationError("an XMP location attribute is not closed")
        spans.append((match.start(), close))
    blanked = bytearray(packet)
    for first, last in spans:
        blanked[first:last] = b" " * (last - first)
    if _names_location_property(blanked, prefixes) or b"G\0P\0S" in blanked:
        raise LocationError("the XMP packet still names a location property after blanking")
    if items_kept is not None:
        for match in _XMP_MOTION_FLAG.finditer(packet):
            blanked[match.start(1)] = ord("0")
            spans.append((match.start(1), match.end(1)))
        for first, last in _container_items(packet)[items_kept:]:
            blanked[first:last] = b" " * (last - first)
            spans.append((first, last))
    if not spans:
        return False
    first, last = min(span[0] for span in spans), max(span[1] for span in spans)
    file.seek(start + first)
    file.write(blanked[first:last])
    return True


def is_location_name(local_name: bytes) -> bool:
    """True when a property of this local name (what follows its prefix's colon) is location, as blanked here."""
    return _LOCATION_LOCAL_NAME.fullmatch(local_name) is not None


def _names_location_property(packet: bytes, prefixes: bytes = LOCATION_PREFIXES) -> bool:
    """True when the packet, as exiftool reads its names, names a GPS or place property, or one of a
    location namespace (under one of `prefixes`, see _location_prefixes)."""
    names = _NOT_NAME_OR_MARKUP.sub(b"", packet)
    in_namespace = rb"[<\s](?:" + prefixes + rb"):"
    # The first search, for the word anywhere, spares the name pattern most packets.
    word = _LOCATION_WORD.search(names) is not None and _XMP_LOCATION_WORD_NAME.search(names) is not None
    return b":GPS" in names or word or any(re.search(pattern, names) for pattern in (_XMP_PLACE_PROPERTY, in_namespace))


def _location_prefixes(packet: bytes) -> bytes:
    """The location namespaces' usual prefixes and those the packet binds to them, as a pattern's alternatives.

    LocationError when such a namespace is there but not bound to a prefix (a default namespace),
    or bound to more prefixes, or longer ones, than the patterns take in good time.
    """
    uses = sum(packet.count(namespace) for namespace in LOCATION_NAMESPACES)
    prefixes = [match.group(1) for match in _LOCATION_NAMESPACE_PREFIX.finditer(packet)] if uses else []
    if uses != len(prefixes):
        raise LocationError("the XMP packet uses a location namespace without a prefix of its own")
    bound = set(prefixes) - set(LOCATION_PREFIXES.split(b"|"))
    if len(bound) > MAX_LOCATION_PREFIXES:
        raise LocationError(
            f"the XMP packet binds the location namespaces to more than {MAX_LOCATION_PREFIXES} prefixes"
        )
    if any(len(prefix) > MAX_PREFIX_BYTES for prefix in bound):
        raise LocationError(
            f"the XMP packet binds a location namespace to a prefix longer than {MAX_PREFIX_BYTES} bytes"
        )
    return b"|".join([LOCATION_PREFIXES, *map(re.escape, sorted(bound))])


def _container_items(packet: bytes) -> list[tuple[int, int]]:
    """The spans of the items (`rdf:li`) of the packet's container directory, in order.

    Empty when there is no directory, or it is not a plain list of items (unclosed, nested):
    then it is left as it is.
    """
    prefixes = {match.group(1) for match in _CONTAINER_PREFIX.finditer(packet)}
    if len(prefixes) != 1:  # none, or a crafted packet: the directory stays
        return []
    prefix = prefixes.pop()
    opening = _tag_end(packet, b"<" + prefix + b":Directory", _DIRECTORY_TAG_REST, 0)
    closing = packet.find(b"</" + prefix + b":Directory>", opening) if opening >= 0 else -1
    if closing < 0:
        return []
    items, position = [], opening
    while (item := _RDF_ITEM.search(packet, position, closing)) is not None:
        end = item.end()
        if not item.group(0).endswith(b"/>"):
            end = packet.find(b"</rdf:li>", end, closing)
            if end < 0 or packet.find(b"<rdf:li", item.end(), end) >= 0:
                return []
            end += len(b"</rdf:li>")
        items.append((item.start(), end))
        position = end
    return items


def _tag_end(packet: bytes, tag: bytes, rest: re.Pattern, position: int) -> int:
    """Where the first `tag` at or after `position` that `rest` completes ends, or -1.

    What a compiled `re.escape(tag) + rest` would find, without compiling a pattern for each name a
    packet holds: re's cache soon misses, and each compile costs (1.5 s per MiB of distinct names).
    """
    while (found := packet.find(tag, position)) >= 0:
        if (after := rest.match(packet, found + len(tag))) is not None:
            return after.end()
        position = found + 1
    return -1

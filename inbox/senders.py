"""Who may publish: the INBOX_PUBLISHERS list, and a DMARC-style check of Mailgun's SPF/DKIM verdicts.

A message is admitted when its From address is on the list and Mailgun vouches for that
address: SPF Pass for an envelope sender whose domain aligns with the From domain, or DKIM
Pass with a `DKIM-Signature` whose `d=` aligns with it.

Alignment is "the same domain, or a subdomain of the From domain" (From example.com is
vouched for by mail.example.com). DMARC's relaxed mode compares organizational domains, which
needs the public-suffix list; without it, accepting a parent domain (d=example.com for From
a.example.com) would also accept d=co.uk for any From under co.uk. So parents do not align.

Only the verdicts Mailgun wrote count: Mailgun puts its headers above the `Received` line by
which its MX (mxa.mailgun.org, mxb.eu.mailgun.org, ...) accepted the mail; anything below
was written by the sender.
"""

from __future__ import annotations

import email.errors
import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_PUBLISHER_ENTRIES = 1000
MAX_FROM_CHARS = 2000
# A message's Mailgun block is its first few headers; a DKIM signature is a few hundred bytes.
MAX_HEADERS_SCANNED = 500
MAX_DKIM_SIGNATURES = 16
MAX_DKIM_HEADER_CHARS = 8192
MAX_DKIM_TAGS = 64

DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")
LOCAL_PART = re.compile(r"[^@\s,;<>()\[\]\\\"]{1,64}")
MAILGUN_MX = re.compile(r"\bby\s+mx[a-z0-9-]*\.(?:eu\.)?mailgun\.org\b", re.IGNORECASE)
SPLIT_ENTRIES = re.compile(r"[\s,]+")

SPF_VERDICT = "x-mailgun-spf"
DKIM_VERDICT = "x-mailgun-dkim-check-result"
SPAM_FLAG = "x-mailgun-sflag"
MARK_MODE_HINT = "turn on the spam filter's 'mark' mode for the domain in Mailgun (README)"


class PublishersError(ValueError):
    """INBOX_PUBLISHERS cannot be read; the message names the entry and what to write instead."""


class NotAPublisher(Exception):
    """The message may not publish; the message says exactly which check failed."""


@dataclass(frozen=True)
class Publishers:
    """Who may publish: anyone, or these addresses and every address at these domains."""

    anyone: bool = False
    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()

    def allow(self, address: str) -> bool:
        """Whether `address` (any case) is on the list."""
        address = address.lower()
        return self.anyone or address in self.addresses or address.rpartition("@")[2] in self.domains


ANYONE = Publishers(anyone=True)


def parse_publishers(value: str) -> Publishers:
    """Read INBOX_PUBLISHERS: addresses and `@domain` entries, comma or space separated, or `*`."""
    entries = [entry for entry in SPLIT_ENTRIES.split((value or "").strip().lower()) if entry]
    if not entries:
        raise PublishersError(
            "INBOX_PUBLISHERS is not set: list who may publish (alice@example.com, @example.com), "
            "or set it to * to let anyone publish"
        )
    if len(entries) > MAX_PUBLISHER_ENTRIES:
        raise PublishersError(f"INBOX_PUBLISHERS has {len(entries)} entries, more than {MAX_PUBLISHER_ENTRIES}")
    if "*" in entries:
        if len(entries) > 1:
            raise PublishersError("INBOX_PUBLISHERS: * means anyone; write either * alone or a list of addresses")
        return ANYONE
    addresses, domains = set(), set()
    for entry in entries:
        local, at, domain = entry.rpartition("@")
        if "*" in entry:  # read literally, '*@friends.example' would start fine and refuse every friend
            if local == "*" and DOMAIN.fullmatch(domain):
                instead = f"did you mean @{domain}? (everyone at {domain})"
            else:
                instead = "write @domain for everyone at a domain (each subdomain separately)"
            raise PublishersError(
                f"INBOX_PUBLISHERS entry {entry!r}: * is not a pattern, it means anyone and stands alone; {instead}"
            )
        if not at or not DOMAIN.fullmatch(domain) or (local and not LOCAL_PART.fullmatch(local)):
            raise PublishersError(
                f"INBOX_PUBLISHERS entry {entry!r} is neither an address (alice@example.com) "
                "nor a domain (@example.com)"
            )
        if local:
            addresses.add(entry)
        else:
            domains.add(domain)
    return Publishers(addresses=frozenset(addresses), domains=frozenset(domains))


def aligns(domain: str, from_domain: str) -> bool:
    """Relaxed alignment without the public-suffix list: the same domain or a subdomain of it."""
    domain, from_domain = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    return domain == from_domain or domain.endswith("." + from_domain)


def from_address(from_header: str) -> str:
    """The one address of a From header, lower case; NotAPublisher if there is not exactly one."""
    if len(from_header or "") > MAX_FROM_CHARS:
        raise NotAPublisher(f"the From header is longer than {MAX_FROM_CHARS} characters")
    try:
        header = email.policy.default.header_factory("From", from_header or "")
        addresses = header.addresses
    except (email.errors.HeaderParseError, IndexError, ValueError) as error:
        raise NotAPublisher(f"From {from_header!r} cannot be read: {error}") from None
    except RecursionError:  # the parser recurses once per nested comment, "((((..."
        raise NotAPublisher("the From header cannot be read: its comments '(' nest too deeply") from None
    if (
        len(addresses) != 1
        or not LOCAL_PART.fullmatch(addresses[0].username)
        or not DOMAIN.fullmatch(addresses[0].domain.lower())
    ):
        raise NotAPublisher(f"From {from_header!r} is not exactly one address")
    return addresses[0].addr_spec.lower()


def mailgun_block(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """The headers Mailgun wrote: those above the Received line of Mailgun's MX, names lower case.

    None when no such line is among the first MAX_HEADERS_SCANNED headers.
    """
    for position, (name, value) in enumerate(headers[:MAX_HEADERS_SCANNED]):
        if name.lower() == "received" and MAILGUN_MX.search(value):
            return [(name.lower(), value.strip()) for name, value in headers[:position]]
    return None


def dkim_domains(headers: Sequence[tuple[str, str]]) -> list[str]:
    """The d= domain of every DKIM-Signature header (tag-list syntax, RFC 6376 3.2), lower case."""
    signatures = [value for name, value in headers[:MAX_HEADERS_SCANNED] if name.lower() == "dkim-signature"]
    if len(signatures) > MAX_DKIM_SIGNATURES:
        raise NotAPublisher(f"{len(signatures)} DKIM-Signature headers, more than {MAX_DKIM_SIGNATURES}")
    domains = []
    for signature in signatures:
        if len(signature) > MAX_DKIM_HEADER_CHARS:
            raise NotAPublisher(f"a DKIM-Signature header is longer than {MAX_DKIM_HEADER_CHARS} characters")
        tags = signature.split(";", MAX_DKIM_TAGS)
        if len(tags) > MAX_DKIM_TAGS:
            raise NotAPublisher(f"a DKIM-Signature header has more than {MAX_DKIM_TAGS} tags")
        for tag in tags:
            name, equals, value = tag.partition("=")
            if equals and name.strip().lower() == "d":
                domains.append("".join(value.split()).lower())
    return domains


def verdict(block: Sequence[tuple[str, str]], name: str) -> str | None:
    """Mailgun's verdict `name` in its block ("pass", "fail", ...), None when absent; a split verdict is "mixed"."""
    values = {value.split(None, 1)[0].lower() if value else "" for header, value in block if header == name}
    if not values:
        return None
    return values.pop() if len(values) == 1 else "mixed"


def admit(publishers: Publishers, from_header: str, sender: str, headers: Sequence[tuple[str, str]]) -> None:
    """Raise NotAPublisher unless the message is from a listed, authenticated publisher (or the list is `*`).

    `sender` is the envelope MAIL FROM, `headers` Mailgun's `message-headers` pairs in order.
    With `*` nobody is checked, but a spam verdict in Mailgun's block still refuses the message.
    """
    block = mailgun_block(headers)
    if publishers.anyone:
        if block is not None:
            refuse_spam(block)
        return
    address = from_address(from_header)
    if not publishers.allow(address):
        raise NotAPublisher(f"From {address} is not in INBOX_PUBLISHERS")
    authenticate(address, sender, headers)


def authenticate(address: str, sender: str, headers: Sequence[tuple[str, str]], what: str = "From") -> None:
    """Raise NotAPublisher unless Mailgun vouches for `address`: SPF or DKIM Pass of a domain aligned with its own.

    `sender` is the envelope MAIL FROM, `headers` Mailgun's `message-headers` pairs in order;
    `what` names the address in the reason (the From, or the envelope sender a reply goes to).
    """
    block = mailgun_block(headers)
    if block is None:
        raise NotAPublisher(
            "no Received line by Mailgun's MX (mx*.mailgun.org) in message-headers: not mail Mailgun received"
        )
    refuse_spam(block)
    spf, dkim = verdict(block, SPF_VERDICT), verdict(block, DKIM_VERDICT)
    if spf is None and dkim is None:
        raise NotAPublisher(f"no Mailgun SPF/DKIM verdict above Mailgun's Received line: {MARK_MODE_HINT}")
    from_domain = address.rpartition("@")[2]
    sender_domain = sender.strip().strip("<>").rpartition("@")[2].lower()
    failures = []
    if spf == "pass":
        if sender_domain and aligns(sender_domain, from_domain):
            return
        failures.append(
            f"SPF Pass for sender domain {sender_domain or '(none)'} does not align with {what} domain {from_domain}"
        )
    else:
        failures.append(f"SPF verdict is {spf or 'absent'}")
    if dkim == "pass":
        signers = dkim_domains(headers)
        if any(aligns(domain, from_domain) for domain in signers):
            return
        shown = ", ".join(f"d={domain}" for domain in signers) or "no DKIM-Signature d="
        failures.append(f"DKIM Pass but {shown} does not align with {what} domain {from_domain}")
    else:
        failures.append(f"DKIM verdict is {dkim or 'absent'}")
    raise NotAPublisher(f"{what} {address} is not authenticated: " + "; ".join(failures))


def refuse_spam(block: Sequence[tuple[str, str]]) -> None:
    if verdict(block, SPAM_FLAG) not in (None, "no"):
        raise NotAPublisher("Mailgun flagged it as spam (X-Mailgun-Sflag)")

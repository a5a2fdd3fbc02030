"""Who may publish: INBOX_PUBLISHERS and Mailgun's SPF/DKIM/spam verdicts, as Mailgun posts them."""

from __future__ import annotations

import pytest

from inbox.senders import NotAPublisher, PublishersError, admit, parse_publishers

MAILGUN_RECEIVED = (
    "from mail-wr1.example.com (mail-wr1.example.com [203.0.113.7]) by mxa.mailgun.org with ESMTP id 65f0; "
    "Mon, 02 Jun 2025 10:00:00 +0000"
)
EU_RECEIVED = "from mail.example.com (mail.example.com [203.0.113.7]) by mxb.eu.mailgun.org with ESMTP id 1a2b"
DKIM_EXAMPLE = "v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n d=example.com; s=s1;\r\n h=from:to:subject; bh=AAAA; b=BBBB"


def headers(*mailgun, signature=DKIM_EXAMPLE, received=MAILGUN_RECEIVED, below=()):
    """message-headers as Mailgun posts them: its own block, its MX's Received line, then the sender's."""
    upstream = [("Received", "from [10.0.0.2] by mail.example.com with ESMTPSA")]
    if signature:
        upstream.insert(0, ("DKIM-Signature", signature))
    return [
        ("Received", "by luna.mailgun.net with SMTP mgrt 7; Mon, 02 Jun 2025 10:00:01 +0000"),
        *mailgun,
        ("Received", received),
        *below,
        *upstream,
        ("From", "Alice <alice@example.com>"),
        ("Message-Id", "<m1@example.com>"),
    ]


SPF_PASS = ("X-Mailgun-Spf", "Pass")
DKIM_PASS = ("X-Mailgun-Dkim-Check-Result", "Pass")
NOT_SPAM = ("X-Mailgun-Sflag", "No")
ALICE = parse_publishers("alice@example.com")


def refusal(publishers, from_header, sender, message_headers) -> str:
    with pytest.raises(NotAPublisher) as refused:
        admit(publishers, from_header, sender, message_headers)
    return str(refused.value)


def test_a_listed_sender_with_aligned_spf_pass_is_admitted():
    admit(ALICE, "Alice <alice@example.com>", "alice@example.com", headers(NOT_SPAM, SPF_PASS))


def test_spf_for_a_bounce_subdomain_aligns():
    admit(ALICE, "Alice <Alice@Example.COM>", "bounce+x=y@mail.example.com", headers(SPF_PASS))


def test_an_aligned_dkim_pass_is_enough_when_spf_fails():
    admit(ALICE, "alice@example.com", "bounces@esp.example.net", headers(("X-Mailgun-Spf", "Fail"), DKIM_PASS))


def test_eu_mx_and_lower_case_header_names_count():
    block = headers(("x-mailgun-spf", "Pass"), ("X-Mailgun-SFlag", "No"), received=EU_RECEIVED)
    admit(ALICE, "alice@example.com", "alice@example.com", block)


def test_a_from_not_on_the_list_is_refused_by_name():
    assert refusal(ALICE, "Mallory <mallory@example.com>", "mallory@example.com", headers(SPF_PASS)) == (
        "From mallory@example.com is not in INBOX_PUBLISHERS"
    )


def test_a_forged_from_with_spf_pass_for_the_forgers_domain_is_refused():
    dkim_fail = ("X-Mailgun-Dkim-Check-Result", "Fail")
    reason = refusal(ALICE, "alice@example.com", "mallory@evil.test", headers(SPF_PASS, dkim_fail))
    assert "SPF Pass for sender domain evil.test does not align with From domain example.com" in reason
    assert "DKIM verdict is fail" in reason


def test_a_dkim_pass_for_another_domain_is_refused():
    reason = refusal(
        ALICE,
        "alice@example.com",
        "mallory@evil.test",
        headers(DKIM_PASS, signature="v=1; a=rsa-sha256; d=evil.test; s=s1; b=BBBB"),
    )
    assert "DKIM Pass but d=evil.test does not align with From domain example.com" in reason


def test_a_parent_domain_signature_does_not_align():
    publishers = parse_publishers("@a.example.com")
    reason = refusal(publishers, "bob@a.example.com", "bob@other.test", headers(DKIM_PASS))
    assert "d=example.com does not align with From domain a.example.com" in reason


def test_a_lookalike_domain_does_not_align():
    reason = refusal(ALICE, "alice@example.com", "x@evilexample.com", headers(SPF_PASS, signature=None))
    assert "sender domain evilexample.com does not align" in reason


def test_verdicts_written_by_the_sender_below_mailguns_received_line_count_for_nothing():
    reason = refusal(ALICE, "alice@example.com", "alice@example.com", headers(below=[SPF_PASS, DKIM_PASS, NOT_SPAM]))
    assert reason.startswith("no Mailgun SPF/DKIM verdict above Mailgun's Received line")
    assert "'mark' mode" in reason


def test_a_forged_received_line_below_mailguns_does_not_move_the_block():
    forged = [("Received", "from x by mxa.mailgun.org with ESMTP"), SPF_PASS]
    reason = refusal(
        ALICE,
        "alice@example.com",
        "alice@example.com",
        headers(("X-Mailgun-Spf", "SoftFail"), below=forged, signature=None),
    )
    assert "SPF verdict is softfail" in reason


def test_without_mailguns_received_line_nothing_is_trusted():
    message_headers = [SPF_PASS, DKIM_PASS, ("Received", "from x by mx.example.org"), ("DKIM-Signature", DKIM_EXAMPLE)]
    reason = refusal(ALICE, "alice@example.com", "alice@example.com", message_headers)
    assert "no Received line by Mailgun's MX" in reason


def test_a_spam_verdict_refuses_even_an_authenticated_publisher():
    reason = refusal(ALICE, "alice@example.com", "alice@example.com", headers(("X-Mailgun-Sflag", "Yes"), SPF_PASS))
    assert reason == "Mailgun flagged it as spam (X-Mailgun-Sflag)"


def test_anyone_needs_no_verdicts_but_spam_is_still_refused():
    anyone = parse_publishers("*")
    admit(anyone, "x@anywhere.test", "y@elsewhere.test", headers())
    admit(anyone, "x@anywhere.test", "", [])
    reason = refusal(anyone, "x@anywhere.test", "x@anywhere.test", headers(("X-Mailgun-Sflag", "Yes")))
    assert "spam" in reason


def test_domain_entries_admit_that_domain_only():
    publishers = parse_publishers("@Example.com, bob@other.test")
    admit(publishers, "carol@example.com", "carol@example.com", headers(SPF_PASS))
    admit(publishers, "Bob@Other.test", "bob@other.test", headers(SPF_PASS))
    assert "not in INBOX_PUBLISHERS" in refusal(
        publishers, "carol@sub.example.com", "carol@sub.example.com", headers(SPF_PASS)
    )
    assert "not in INBOX_PUBLISHERS" in refusal(publishers, "eve@other.test", "eve@other.test", headers(SPF_PASS))


@pytest.mark.parametrize(
    "from_header",
    [
        "",
        "alice@example.com, bob@example.com",
        "not an address",
        "<@>",
        '"alice smith"@example.com',
        "A <alice@example.com>" + " " * 2000,
    ],
)
def test_a_from_that_is_not_one_address_is_refused(from_header):
    assert "From" in refusal(ALICE, from_header, "alice@example.com", headers(SPF_PASS))


@pytest.mark.parametrize("depth", [400, 1900])
def test_a_from_of_deeply_nested_comments_is_refused_with_a_reason(depth):
    from_header = "(" * depth + "alice@example.com"
    assert refusal(ALICE, from_header, "alice@example.com", headers(SPF_PASS)) == (
        "the From header cannot be read: its comments '(' nest too deeply"
    )


def test_a_from_with_real_comments_is_still_admitted():
    admit(ALICE, "(Alice) Alice Smith <alice@example.com> (home)", "alice@example.com", headers(SPF_PASS))


def test_too_many_dkim_signatures_fail_closed():
    many = [("DKIM-Signature", "d=evil.test; b=x")] * 17
    reason = refusal(ALICE, "alice@example.com", "x@evil.test", headers(DKIM_PASS, below=many, signature=None))
    assert "17 DKIM-Signature headers" in reason


def test_a_huge_dkim_signature_fails_closed():
    reason = refusal(ALICE, "alice@example.com", "x@evil.test", headers(DKIM_PASS, signature="d=example.com; " * 600))
    assert "DKIM-Signature header" in reason


def test_publisher_list_separators_and_case():
    publishers = parse_publishers(" Alice@Example.com,bob@example.org  @Team.Example.net ")
    assert publishers.addresses == {"alice@example.com", "bob@example.org"}
    assert publishers.domains == {"team.example.net"}
    assert not publishers.anyone


@pytest.mark.parametrize(
    "value, named",
    [
        ("", "INBOX_PUBLISHERS is not set"),
        (" , ", "or set it to * to let anyone publish"),
        ("alice@example.com, *", "* alone"),
        ("alice", "'alice' is neither an address"),
        ("@", "'@' is neither"),
        ("alice@localhost", "'alice@localhost'"),
        ("a@b@example.com", "'a@b@example.com'"),
        ("*@friends.example", "'*@friends.example': * is not a pattern"),
        ("alice@example.com *@Friends.Example", "did you mean @friends.example?"),
        ("@*.example.com", "'@*.example.com': * is not a pattern"),
        ("*.example.com", "each subdomain separately"),
    ],
)
def test_malformed_publisher_lists_say_what_to_write(value, named):
    with pytest.raises(PublishersError) as error:
        parse_publishers(value)
    assert named in str(error.value)
    assert isinstance(error.value, ValueError)

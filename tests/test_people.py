"""Issue 9 end to end through the webhook: who may publish, the reply via a Messages API stand-in, delete by reply."""

from __future__ import annotations

import email.policy
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from logging.handlers import BufferingHandler
from pathlib import Path

import pytest

from inbox.delivery import build_delivery, signed_fields
from inbox.receipts import ABANDONED_AFTER, message_key
from inbox.reply_commands import new_text
from inbox.senders import parse_publishers
from inbox.storage import current_store
from inbox.takedown import take_down
from tests.harness import SIGNING_KEY, make_image
from tests.test_mimeform import multipart

PUBLISHERS = "alice@family.example @friends.example"
REPLY_FROM = "Family photos <photos@mg.example.com>"
ALICE = "Alice <alice@family.example>"
MX_RECEIVED = (
    "from mail.family.example (mail.family.example [203.0.113.7]) by mxa.mailgun.org with ESMTP id "
    "6650a1b2c3; Mon, 02 Jun 2025 10:00:00 +0000"
)
NOT_SPAM, SPF_PASS, DKIM_PASS = (
    ("X-Mailgun-Sflag", "No"),
    ("X-Mailgun-Spf", "Pass"),
    ("X-Mailgun-Dkim-Check-Result", "Pass"),
)
SPF_FAIL, DKIM_FAIL = ("X-Mailgun-Spf", "Fail"), ("X-Mailgun-Dkim-Check-Result", "Fail")
PHOTO, OTHER_PHOTO = make_image(".jpg", color=(10, 120, 200)), make_image(".jpg", color=(250, 200, 0))
FOREST = make_image(".jpg", color=(0, 90, 0))


def dkim_signature(domain: str) -> tuple[str, str]:
    return (
        "DKIM-Signature",
        f"v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n d={domain}; s=20230601;\r\n"
        " h=from:to:subject:date:message-id; bh=Q2hlY2s=; b=U2lnbmF0dXJl",
    )


def trace(*verdicts, signer="family.example", below=()) -> list[tuple[str, str]]:
    """The headers above the message's own, as Mailgun posts them: its block, its MX's Received, the sender's."""
    return [
        ("X-Mailgun-Incoming", "Yes"),
        *verdicts,
        ("Received", MX_RECEIVED),
        *below,
        dkim_signature(signer),
        ("Received", "from [192.168.1.20] by mail.family.example with ESMTPSA id 4f2; Mon, 02 Jun 2025 09:59:58 +0000"),
    ]


def mail(
    *photos: tuple[str, bytes],
    sender="alice@family.example",
    from_header=ALICE,
    verdicts=(NOT_SPAM, SPF_PASS, DKIM_PASS),
    signer="family.example",
    below=(),
    headers=(),
    references="<earlier@family.example>",
    **fields,
):
    """A signed Mailgun delivery of a message to the inbox; post `.form()` (a fresh body each time)."""
    return build_delivery(
        [(filename, content, "image/jpeg") for filename, content in photos],
        key=SIGNING_KEY,
        sender=sender,
        recipient="photos@mg.example.com",
        from_header=from_header,
        **{"subject": "Holiday", **fields},
        headers=[("Date", "Mon, 02 Jun 2025 09:59:57 +0000"), ("References", references), *headers],
        trace=trace(*verdicts, signer=signer, below=below),
    )


@pytest.fixture
def settings(tmp_path, mailgun_api) -> dict:
    return {
        "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
        "INBOX_PUBLISHERS": PUBLISHERS,
        "STORAGE_PATH": str(tmp_path / "storage"),
        "INBOX_REPLY_FROM": REPLY_FROM,
        "MAILGUN_API_URL": mailgun_api.api_url,
        "MAILGUN_DOMAIN": mailgun_api.domain,
        "MAILGUN_API_KEY": mailgun_api.api_key,
    }


@pytest.fixture
def post(client):
    def post_delivery(delivery):
        return client.post("/webhooks/mailgun", data=delivery.form())

    return post_delivery


@pytest.fixture
def published(tmp_path):
    """The names of the image objects in the storage folder."""
    return lambda: sorted(path.name for path in (tmp_path / "storage" / "images").glob("*"))


@pytest.fixture
def inbox_log():
    """The service's log records (its logger does not propagate to the root logger, where caplog listens)."""
    logger, handler = logging.getLogger("inbox"), BufferingHandler(capacity=10_000)
    logger.addHandler(handler)
    yield handler.buffer
    logger.removeHandler(handler)


def fields_of(sent: dict) -> dict:
    return {name: values[0] for name, values in sent["fields"].items()}


def test_a_publisher_gets_one_threaded_automatic_reply_with_every_url(post, client, mailgun_api):
    answer = post(
        mail(
            ("beach.jpg", PHOTO),
            ("dunes.jpg", OTHER_PHOTO),
            ("notes.pdf", b"%PDF-1.4\n%\xe2\xe3\n"),
            message_id="<CAF1x@mail.family.example>",
        )
    )

    assert answer.status_code == 200, answer.json
    urls = [item["url"] for item in answer.json["stored"]]
    [sent] = mailgun_api.sent()
    assert answer.json["reply"] == {"sent": True, "id": sent["id"]}
    reply = fields_of(sent)
    assert (reply["from"], reply["to"], reply["subject"]) == (REPLY_FROM, "alice@family.example", "Re: Holiday")
    assert reply["h:In-Reply-To"] == "<CAF1x@mail.family.example>"
    assert reply["h:References"] == "<earlier@family.example> <CAF1x@mail.family.example>"
    assert reply["h:Message-Id"].startswith("<inbox.") and reply["h:Message-Id"].endswith("@mg.example.com>")
    assert reply["h:Auto-Submitted"] == "auto-replied"
    assert (reply["o:tracking"], reply["o:tracking-clicks"], reply["o:tracking-opens"]) == ("no", "no", "no")
    assert len(urls) == 2
    for url in urls:
        assert url in reply["text"] and f'<img src="{url}"' in reply["html"]
        assert client.get(url).data in (PHOTO, OTHER_PHOTO)
    assert "notes.pdf: not an accepted image" in reply["text"]
    assert 'reply to this mail with the word "delete"' in reply["text"]
    assert "Not everything arrived" not in reply["text"]


def test_a_mail_that_lost_attachments_on_its_way_tells_its_sender_to_send_them_again(post, mailgun_api):
    answer = post(mail(("beach.jpg", PHOTO), **{"attachment-count": "3"}))

    assert answer.status_code == 200 and len(answer.json["stored"]) == 1
    reply = fields_of(mailgun_api.sent()[0])
    advice = "Not everything arrived: 2 of its 3 attachments did not arrive. Please send those photos again."
    assert advice in reply["text"] and advice in reply["html"]
    assert answer.json["stored"][0]["url"] in reply["text"]


def test_a_mail_with_nothing_publishable_gets_a_reply_listing_why_with_no_empty_list(post, mailgun_api):
    answer = post(mail(("notes.txt", b"shopping list: milk")))

    assert answer.status_code == 415
    reply = fields_of(mailgun_api.sent()[0])
    assert reply["text"] == (
        "Nothing was published.\n\nNot published (1):\n\n  notes.txt: not an accepted image: the content is text/plain"
    )
    assert "<ul>\n</ul>" not in reply["html"] and "<ul></ul>" not in reply["html"]


def test_a_mail_none_of_whose_attachments_arrived_still_gets_a_reply_saying_so(post, mailgun_api, published):
    answer = post(mail(**{"attachment-count": "2"}))

    assert answer.status_code == 415 and published() == []
    assert answer.json["reason"] == "nothing to publish: none of its 2 attachments arrived"
    reply = fields_of(mailgun_api.sent()[0])
    assert reply["text"].startswith("Nothing was published.")
    assert "Not everything arrived: none of its 2 attachments arrived. Please send those photos again." in reply["text"]
    assert "delete" not in reply["text"]


def test_a_redelivery_same_token_or_new_token_sends_no_second_reply(post, mailgun_api, published):
    first_delivery = mail(("beach.jpg", PHOTO), message_id="<again@family.example>")
    first = post(first_delivery)
    same_token = post(first_delivery)
    new_token = post(mail(("beach.jpg", PHOTO), message_id="<again@family.example>"))

    assert first.status_code == same_token.status_code == new_token.status_code == 200
    assert same_token.json == first.json
    assert new_token.json["stored"] == first.json["stored"] and new_token.json["reply"] == first.json["reply"]
    assert len(mailgun_api.sent()) == 1
    assert len(published()) == 1


def at_once(app, mailgun_api, first, second):
    """Post `second` while `first` is still sending its mail (Mailgun slowed to 1.5 s).

    Returns both answers, and whether the second came while the first was still running.
    """
    mailgun_api.delay(1.5)
    with ThreadPoolExecutor(2) as pool:
        answering = pool.submit(app.test_client().post, "/webhooks/mailgun", data=first.form())
        time.sleep(0.5)
        meanwhile = pool.submit(app.test_client().post, "/webhooks/mailgun", data=second.form()).result()
        overlapped = not answering.done()
        answered = answering.result()
    mailgun_api.delay(0)
    return answered, meanwhile, overlapped


def without_message_id(*photos, **fields):
    return mail(*photos, message_id="", **{"Message-Id": None}, **fields)


def test_mails_without_a_message_id_are_told_apart_by_their_content(post, client, mailgun_api, published):
    beach = post(without_message_id(("beach.jpg", PHOTO)))
    forest = post(without_message_id(("forest.jpg", FOREST)))

    assert beach.status_code == forest.status_code == 200 and beach.json["message_id"] is None
    assert len(mailgun_api.sent()) == 2 and beach.json["reply"] != forest.json["reply"]
    assert forest.json["stored"][0]["url"] in fields_of(mailgun_api.sent()[-1])["text"]
    again = post(without_message_id(("beach.jpg", PHOTO)))  # the first mail again, with a new token
    assert again.json["stored"] == beach.json["stored"] and again.json["reply"] == beach.json["reply"]
    assert len(mailgun_api.sent()) == 2 and len(published()) == 2


def test_after_a_delete_the_senders_next_mail_without_a_message_id_is_published(post, client, mailgun_api, published):
    first = post(without_message_id(("beach.jpg", PHOTO)))
    reply = fields_of(mailgun_api.sent()[-1])
    assert post(answer_to(reply, "delete")).json["deleted"] == [first.json["stored"][0]["url"]]

    later = post(without_message_id(("forest.jpg", FOREST)))
    same_photo_again = post(without_message_id(("beach.jpg", PHOTO), subject="Holiday, once more"))

    assert later.status_code == 200 and client.get(later.json["stored"][0]["url"]).data == FOREST
    assert same_photo_again.status_code == 200 and len(same_photo_again.json["stored"]) == 1
    assert client.get(first.json["stored"][0]["url"]).status_code == 404  # a new mail, a new name
    assert len(mailgun_api.sent()) == 4  # two replies, the confirmation and a reply to each new mail


def test_two_deliveries_of_one_mail_at_once_send_one_reply(app, client, mailgun_api, published):
    # Two routes matching one mail, or two of our addresses in it: Mailgun posts it twice, with two tokens.
    first, second = (mail(("beach.jpg", PHOTO), message_id="<both@family.example>") for _ in range(2))
    answered, meanwhile, overlapped = at_once(app, mailgun_api, first, second)

    assert answered.status_code == 200
    assert meanwhile.status_code == 503, f"{len(mailgun_api.sent())} replies"
    assert overlapped  # the second was answered while the first was sending its reply
    assert meanwhile.json["reason"] == "another delivery of this mail is being answered now; Mailgun will retry"
    retried = client.post("/webhooks/mailgun", data=second.form())  # Mailgun's retry: the same token
    assert retried.status_code == 200
    assert retried.json["reply"] == answered.json["reply"] and retried.json["stored"] == answered.json["stored"]
    assert len(mailgun_api.sent()) == 1
    assert len(published()) == 1


def test_a_reply_claim_whose_worker_died_holds_the_mail_until_it_is_old_then_is_taken_over(post, settings, mailgun_api):
    assert post(mail(("beach.jpg", PHOTO), message_id="<crash@family.example>")).status_code == 200
    (record,) = (Path(settings["STORAGE_PATH"]) / "images-receipts").glob("message-*.json")
    record.write_text(json.dumps({"since": int(time.time())}))  # claimed, and its reply not sent yet

    held = post(mail(("beach.jpg", PHOTO), message_id="<crash@family.example>"))
    assert held.status_code == 503 and "being answered now" in held.json["reason"]

    record.write_text(json.dumps({"since": int(time.time()) - ABANDONED_AFTER - 1}))  # its worker died
    taken_over = post(mail(("beach.jpg", PHOTO), message_id="<crash@family.example>"))
    assert taken_over.status_code == 200 and taken_over.json["reply"]["sent"] is True
    assert len(mailgun_api.sent()) == 2
    assert json.loads(record.read_text())["reply"] == taken_over.json["reply"]


def test_a_reply_mailgun_could_not_take_is_sent_by_the_retry_of_another_delivery(post, mailgun_api):
    mailgun_api.fail_next(503, count=3)
    assert post(mail(("beach.jpg", PHOTO), message_id="<later@family.example>")).status_code == 503
    # The same mail again, with a new token: the first attempt left no claim behind.
    answer = post(mail(("beach.jpg", PHOTO), message_id="<later@family.example>"))
    assert answer.status_code == 200 and answer.json["reply"]["sent"] is True
    assert len(mailgun_api.sent()) == 1


@pytest.mark.parametrize(
    "sender, headers, reason",
    [
        ("alice@family.example", [("Auto-Submitted", "auto-replied")], "Auto-Submitted: auto-replied"),
        ("alice@family.example", [("List-Id", "<family.lists.family.example>")], "list mail (List-Id)"),
        (
            "alice@family.example",
            [("List-Unsubscribe", "<mailto:leave@family.example>")],
            "list mail (List-Unsubscribe)",
        ),
        ("alice@family.example", [("Precedence", "bulk")], "Precedence: bulk"),
        ("alice@family.example", [("X-Auto-Response-Suppress", "OOF, AutoReply")], "X-Auto-Response-Suppress"),
        ("", [], "the envelope sender is null"),
        ("MAILER-DAEMON@family.example", [], "mail system or list address"),
        ("noreply@family.example", [], "mail system or list address"),
        ("owner-photos@family.example", [], "mail system or list address"),
    ],
)
def test_mail_we_must_never_answer_is_published_without_a_reply(post, mailgun_api, published, sender, headers, reason):
    answer = post(mail(("beach.jpg", PHOTO), sender=sender, headers=headers))

    assert answer.status_code == 200, answer.json
    assert answer.json["reply"]["sent"] is False and reason in answer.json["reply"]["reason"]
    assert len(published()) == 1
    assert mailgun_api.sent() == []


def test_with_anyone_publishing_no_reply_goes_to_an_envelope_sender_mailgun_does_not_vouch_for(
    client, post, mailgun_api, published
):
    client.application.config["INBOX_PUBLISHERS"] = parse_publishers("*")
    lure = "Your mailbox is full: verify at https://evil.example/login within 24 h"
    forged = dict(sender="victim@example.org", from_header="IT <helpdesk@example.org>", signer="evil.test")

    answer = post(
        mail((f"{lure}.pdf", b"%PDF-1.4\n"), subject=lure, verdicts=(NOT_SPAM, SPF_FAIL, DKIM_FAIL), **forged)
    )

    assert answer.status_code == 415 and mailgun_api.sent() == []
    assert answer.json["reply"] == {
        "sent": False,
        "reason": "the envelope sender victim@example.org is not authenticated: SPF verdict is fail; "
        "DKIM verdict is fail",
    }
    # SPF failed on the way (a forwarder), but the DKIM signature of the sender's domain holds: answered.
    bob = dict(sender="bob@friends.example", from_header="Bob <bob@friends.example>", signer="friends.example")
    signed = post(mail(("beach.jpg", PHOTO), verdicts=(NOT_SPAM, SPF_FAIL, DKIM_PASS), **bob))
    assert signed.status_code == 200 and signed.json["reply"]["sent"] is True
    assert fields_of(mailgun_api.sent()[-1])["to"] == "bob@friends.example"


def test_mail_from_our_own_reply_address_is_not_answered(client, settings, mailgun_api, published):
    client.application.config["INBOX_REPLY_FROM"] = "alice@family.example"  # a loop: the inbox writing to itself
    answer = client.post("/webhooks/mailgun", data=mail(("beach.jpg", PHOTO)).form())
    assert answer.status_code == 200 and "our own reply address" in answer.json["reply"]["reason"]
    assert mailgun_api.sent() == []


def test_mailgun_unavailable_answers_503_and_its_retry_publishes_and_replies_once(post, client, mailgun_api, published):
    mailgun_api.fail_next(503, count=3)  # the first post and both of the sender's own retries
    delivery = mail(("beach.jpg", PHOTO))

    first = post(delivery)
    assert first.status_code == 503 and "Mailgun will retry" in first.json["reason"]
    assert mailgun_api.sent() == []

    retry = post(delivery)  # Mailgun redelivers with the same token
    assert retry.status_code == 200
    [sent] = mailgun_api.sent()
    assert retry.json["reply"] == {"sent": True, "id": sent["id"]}
    assert retry.json["stored"][0]["url"] in fields_of(sent)["text"]
    assert len(published()) == 1 and client.get(retry.json["stored"][0]["url"]).data == PHOTO


def test_a_wrong_api_key_publishes_and_says_why_no_reply_went_out(client, mailgun_api, published, inbox_log):
    client.application.config["MAILGUN_API_KEY"] = "key-not-the-accounts"
    answer = client.post("/webhooks/mailgun", data=mail(("beach.jpg", PHOTO)).form())

    assert answer.status_code == 200
    assert answer.json["reply"]["sent"] is False and "MAILGUN_API_KEY (401)" in answer.json["reply"]["reason"]
    assert client.get(answer.json["stored"][0]["url"]).data == PHOTO
    assert mailgun_api.sent() == []
    assert any("MAILGUN_API_KEY (401)" in record.getMessage() for record in inbox_log)


@pytest.mark.parametrize(
    "sender, from_header, verdicts, signer",
    [
        ("alice@family.example", ALICE, (NOT_SPAM, SPF_PASS), "family.example"),
        ("bounces+alice@mail.family.example", ALICE, (NOT_SPAM, SPF_PASS, DKIM_FAIL), "family.example"),
        ("bounce@esp.example.net", ALICE, (SPF_PASS, DKIM_PASS), "family.example"),
        ("bob@friends.example", "Bob <Bob@Friends.Example>", (NOT_SPAM, SPF_FAIL, DKIM_PASS), "friends.example"),
    ],
)
def test_a_listed_authenticated_publisher_is_published(post, sender, from_header, verdicts, signer):
    answer = post(mail(("beach.jpg", PHOTO), sender=sender, from_header=from_header, verdicts=verdicts, signer=signer))
    assert answer.status_code == 200, answer.json
    assert answer.json["stored"][0]["filename"] == "beach.jpg"


REFUSALS = {
    "not on the list": dict(
        sender="mallory@evil.test",
        from_header="Mallory <mallory@evil.test>",
        signer="evil.test",
        reason="From mallory@evil.test is not in INBOX_PUBLISHERS",
    ),
    "forged From": dict(
        sender="mallory@evil.test",
        verdicts=(NOT_SPAM, SPF_PASS, DKIM_FAIL),
        signer="evil.test",
        reason="SPF Pass for sender domain evil.test does not align with From domain family.example",
    ),
    "misaligned DKIM d=": dict(
        sender="mallory@evil.test",
        verdicts=(NOT_SPAM, SPF_FAIL, DKIM_PASS),
        signer="evil.test",
        reason="DKIM Pass but d=evil.test does not align",
    ),
    "sender-written X-Mailgun-Spf": dict(
        sender="mallory@evil.test",
        verdicts=(NOT_SPAM, SPF_FAIL, DKIM_FAIL),
        below=(("X-Mailgun-Spf", "Pass"), ("X-Mailgun-Dkim-Check-Result", "Pass")),
        reason="SPF verdict is fail; DKIM verdict is fail",
    ),
    "sender-written verdicts only": dict(
        verdicts=(), below=(SPF_PASS, DKIM_PASS), reason="no Mailgun SPF/DKIM verdict above Mailgun's Received line"
    ),
    "spam-flagged": dict(
        verdicts=(("X-Mailgun-Sflag", "Yes"), SPF_PASS, DKIM_PASS),
        reason="Mailgun flagged it as spam (X-Mailgun-Sflag)",
    ),
    "missing verdicts": dict(verdicts=(), reason="turn on the spam filter's 'mark' mode"),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_anyone_else_gets_406_with_the_reason_nothing_stored_no_reply_one_log_line(
    post, mailgun_api, published, inbox_log, case
):
    case = dict(case)
    reason = case.pop("reason")
    answer = post(mail(("beach.jpg", PHOTO), **case))

    assert answer.status_code == 406
    assert answer.json["stored"] == [] and reason in answer.json["reason"]
    assert answer.json["reason"].startswith("not published: ")
    assert published() == []
    assert mailgun_api.sent() == []
    lines = [record.getMessage() for record in inbox_log if reason in record.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]


def publish_for_alice(post, mailgun_api, message_id="<holiday@family.example>"):
    """Alice's photos are published; returns the answer and the reply she got."""
    answer = post(mail(("beach.jpg", PHOTO), ("dunes.jpg", OTHER_PHOTO), message_id=message_id))
    assert answer.status_code == 200, answer.json
    return answer.json, fields_of(mailgun_api.sent()[-1])


def answer_to(
    reply: dict, text: str, *photos, subject=None, message_id="<answer-1@family.example>", headers=(), **options
):
    """A mail client's answer to our reply: threaded under it (RFC 5322 3.6.4), the quote below the stripped text."""
    quoted = "\n".join("> " + line for line in reply["text"].splitlines())
    return mail(
        *photos,
        subject=subject or reply["subject"],
        message_id=message_id,
        text=f"{text}\n\nOn Mon, 2 Jun 2025, Family photos wrote:\n{quoted}",
        **{"stripped-text": text},
        headers=[("In-Reply-To", reply["h:Message-Id"]), *headers],
        references=f"{reply.get('h:References', '')} {reply['h:Message-Id']}".strip(),
        **options,
    )


@pytest.mark.parametrize("text, subject", [("Delete", None), ("", "Re: delete")])
def test_delete_by_the_publisher_takes_the_photos_down_and_confirms(
    post, client, mailgun_api, published, text, subject
):
    original, reply = publish_for_alice(post, mailgun_api)
    urls = [item["url"] for item in original["stored"]]
    assert all(client.get(url).status_code == 200 for url in urls)

    answer = post(answer_to(reply, text, subject=subject))

    assert answer.status_code == 200, answer.json
    assert answer.json["deleted"] == urls and answer.json["stored"] == []
    assert [client.get(url).status_code for url in urls] == [404, 404]
    assert published() == []
    confirmation = fields_of(mailgun_api.sent()[-1])
    assert len(mailgun_api.sent()) == 2 and answer.json["reply"]["id"] == mailgun_api.sent()[-1]["id"]
    assert confirmation["to"] == "alice@family.example"
    assert confirmation["h:In-Reply-To"] == "<answer-1@family.example>"
    assert confirmation["h:Auto-Submitted"] == "auto-replied"
    assert all(url in confirmation["text"] for url in urls)

    again = post(answer_to(reply, "delete", message_id="<answer-2@family.example>"))
    assert again.status_code == 200 and again.json["deleted"] == [] and "nothing to take down" in again.json["reason"]
    assert len(mailgun_api.sent()) == 2


def test_delete_answering_a_later_reply_in_the_thread_takes_down_only_that_mails_photos(
    post, client, mailgun_api, published
):
    first, reply = publish_for_alice(post, mailgun_api)
    more = post(answer_to(reply, "one more", ("forest.jpg", FOREST), message_id="<more@family.example>"))
    second_reply = fields_of(mailgun_api.sent()[-1])
    assert reply["h:Message-Id"] in second_reply["h:References"]  # the thread: her answer carries both replies

    answer = post(answer_to(second_reply, "delete", message_id="<delete@family.example>"))

    assert answer.status_code == 200 and answer.json["deleted"] == [more.json["stored"][0]["url"]]
    assert client.get(more.json["stored"][0]["url"]).status_code == 404
    assert [client.get(item["url"]).status_code for item in first["stored"]] == [200, 200]
    assert len(published()) == 2


def test_a_delete_that_arrives_before_its_mails_record_waits_for_it_and_takes_the_photos_down(
    client, post, mailgun_api, published
):
    # Mailgun took the reply but our wait for its answer ran out (503): Alice has the reply, the mail has no record yet.
    mailgun_api.fail_next(503, count=3)
    first = post(mail(("beach.jpg", PHOTO), ("dunes.jpg", OTHER_PHOTO), message_id="<holiday@family.example>"))
    assert first.status_code == 503 and len(published()) == 2
    with client.application.app_context():
        key = message_key(current_store().name_key, "<holiday@family.example>", "alice@family.example")
    reply = {"subject": "Re: Holiday", "text": "", "h:Message-Id": f"<inbox.{key}@{mailgun_api.domain}>"}
    delete = answer_to(reply, "delete")

    early = post(delete)
    assert early.status_code == 503, early.json
    assert "Mailgun will retry" in early.json["reason"] and len(published()) == 2

    redelivered = post(mail(("beach.jpg", PHOTO), ("dunes.jpg", OTHER_PHOTO), message_id="<holiday@family.example>"))
    assert redelivered.status_code == 200 and redelivered.json["reply"]["id"] == mailgun_api.sent()[-1]["id"]
    retried = post(delete)  # Mailgun's retry of the delete, with its token

    assert retried.status_code == 200 and retried.json["deleted"] == [
        item["url"] for item in redelivered.json["stored"]
    ]
    assert published() == [] and len(mailgun_api.sent()) == 2


def test_delete_answering_a_reply_that_published_nothing_does_nothing_and_sends_no_mail(post, mailgun_api):
    assert post(mail(("notes.pdf", b"%PDF-1.4\n"), message_id="<pdf@family.example>")).status_code == 415
    reply = fields_of(mailgun_api.sent()[-1])
    assert reply["text"].startswith("Nothing was published.")

    answer = post(answer_to(reply, "delete"))

    assert answer.status_code == 200 and answer.json["deleted"] == [] and "reply" not in answer.json
    assert answer.json["reason"] == "nothing to take down: that mail published no photos"
    assert len(mailgun_api.sent()) == 1


def test_photos_attached_to_a_delete_are_not_published_and_the_answer_and_confirmation_say_so(
    post, client, mailgun_api, published
):
    original, reply = publish_for_alice(post, mailgun_api)

    answer = post(answer_to(reply, "Delete those, here is a better one", ("forest.jpg", FOREST)))

    assert answer.status_code == 200 and answer.json["deleted"] == [item["url"] for item in original["stored"]]
    reason = "a delete reply publishes nothing: send these photos in a mail of their own"
    assert answer.json["stored"] == [] and answer.json["rejected"] == [
        {"attachment": "attachment-1", "filename": "forest.jpg", "content_type": "image/jpeg", "reason": reason}
    ]
    assert published() == []
    confirmation = fields_of(mailgun_api.sent()[-1])
    assert f"forest.jpg: {reason}" in confirmation["text"] and "forest.jpg" in confirmation["html"]


def test_two_deliveries_of_one_delete_at_once_send_one_confirmation(app, client, post, mailgun_api, published):
    _, reply = publish_for_alice(post, mailgun_api)
    first, second = (answer_to(reply, "delete") for _ in range(2))  # one mail, two tokens
    confirmed, meanwhile, overlapped = at_once(app, mailgun_api, first, second)

    assert confirmed.status_code == 200 and len(confirmed.json["deleted"]) == 2
    assert meanwhile.status_code == 503, f"{len(mailgun_api.sent())} mails sent"
    assert overlapped
    retried = client.post("/webhooks/mailgun", data=second.form())
    assert retried.status_code == 200 and retried.json["deleted"] == []
    assert len(mailgun_api.sent()) == 2  # the reply and one confirmation
    assert published() == []


def test_photos_taken_down_stay_down_when_the_same_mail_is_delivered_again(post, client, mailgun_api, published):
    original, reply = publish_for_alice(post, mailgun_api)
    assert post(answer_to(reply, "delete")).status_code == 200

    # Her mail server sends the mail again: same Message-Id, so Mailgun posts it with a new token.
    again = post(mail(("beach.jpg", PHOTO), ("dunes.jpg", OTHER_PHOTO), message_id="<holiday@family.example>"))

    assert again.status_code == 200 and again.json["stored"] == [], again.json
    assert "not published again: its sender took this mail's photos down" in again.json["reason"]
    assert published() == [] and [client.get(item["url"]).status_code for item in original["stored"]] == [404, 404]
    assert len(mailgun_api.sent()) == 2  # the reply and the confirmation, nothing for the second delivery


def test_what_the_operator_took_down_stays_down_when_the_same_mail_is_delivered_again(
    post, app, client, mailgun_api, published
):
    original, reply = publish_for_alice(post, mailgun_api)
    beach, dunes = (item["url"] for item in original["stored"])
    with app.app_context():
        assert take_down(current_store(), [beach]).removed == [beach]  # inbox delete, of one of the two

    again = post(mail(("beach.jpg", PHOTO), ("dunes.jpg", OTHER_PHOTO), message_id="<holiday@family.example>"))

    assert again.status_code == 200, again.json
    assert [item["url"] for item in again.json["stored"]] == [dunes]
    assert [(item["filename"], item["reason"]) for item in again.json["rejected"]] == [
        ("beach.jpg", "taken down since this mail was first published")
    ]
    assert client.get(beach).status_code == 404 and client.get(dunes).status_code == 200
    assert len(mailgun_api.sent()) == 1  # no second reply
    with app.app_context():
        assert take_down(current_store(), [dunes]).removed == [dunes]
    gone = post(mail(("beach.jpg", PHOTO), ("dunes.jpg", OTHER_PHOTO), message_id="<holiday@family.example>"))
    assert gone.status_code == 200 and gone.json["stored"] == [], gone.json
    assert gone.json["reason"] == "not published again: taken down since this mail was first published"
    answer = post(answer_to(reply, "delete"))  # the sender can still take the mail down: nothing is left
    assert answer.status_code == 200 and answer.json["deleted"] == [beach, dunes] and published() == []


def test_delete_takes_down_what_a_redelivery_added_to_a_mail_that_first_arrived_incomplete(
    post, client, mailgun_api, published
):
    # Mailgun counted two attachments, one arrived: the reply lists beach.jpg and asks for the rest.
    first = post(mail(("beach.jpg", PHOTO), message_id="<two@family.example>", **{"attachment-count": "2"}))
    reply = fields_of(mailgun_api.sent()[-1])
    # The whole mail again, with a new token: dunes.jpg is published now, without a second reply.
    whole = post(mail(("beach.jpg", PHOTO), ("dunes.jpg", OTHER_PHOTO), message_id="<two@family.example>"))
    assert whole.status_code == 200 and whole.json["reply"] == first.json["reply"] and len(mailgun_api.sent()) == 1
    urls = [item["url"] for item in whole.json["stored"]]
    assert urls[0] == first.json["stored"][0]["url"] and client.get(urls[1]).data == OTHER_PHOTO

    answer = post(answer_to(reply, "delete"))

    assert answer.status_code == 200 and answer.json["deleted"] == urls
    assert [client.get(url).status_code for url in urls] == [404, 404] and published() == []


def test_what_the_operator_took_down_stays_down_when_a_mail_we_never_answered_is_delivered_again(
    post, app, client, mailgun_api, published
):
    listed = dict(message_id="<list@family.example>", headers=[("List-Id", "<family.lists.family.example>")])
    first = post(mail(("beach.jpg", PHOTO), **listed))
    assert first.status_code == 200 and first.json["reply"] == {"sent": False, "reason": "list mail (List-Id)"}
    url = first.json["stored"][0]["url"]
    with app.app_context():
        assert take_down(current_store(), [url]).removed == [url]  # inbox delete

    again = post(mail(("beach.jpg", PHOTO), **listed))  # the same mail, a new token

    assert again.status_code == 200 and again.json["stored"] == [], again.json
    assert again.json["rejected"][0]["reason"] == "taken down since this mail was first published"
    assert client.get(url).status_code == 404 and published() == [] and mailgun_api.sent() == []


def test_delete_from_another_publisher_does_nothing(post, client, mailgun_api, published):
    original, reply = publish_for_alice(post, mailgun_api)

    answer = post(
        answer_to(
            reply,
            "delete",
            sender="bob@friends.example",
            from_header="Bob <bob@friends.example>",
            signer="friends.example",
        )
    )

    assert answer.status_code == 200
    assert answer.json["deleted"] == [] and "nothing to take down" in answer.json["reason"]
    assert all(client.get(item["url"]).status_code == 200 for item in original["stored"])
    assert len(published()) == 2 and len(mailgun_api.sent()) == 1


def test_delete_from_someone_unauthenticated_is_refused_and_does_nothing(post, client, mailgun_api, published):
    original, reply = publish_for_alice(post, mailgun_api)

    answer = post(answer_to(reply, "delete", sender="mallory@evil.test", verdicts=(NOT_SPAM, SPF_PASS, DKIM_FAIL)))

    assert answer.status_code == 406 and "does not align" in answer.json["reason"]
    assert all(client.get(item["url"]).status_code == 200 for item in original["stored"])
    assert len(published()) == 2 and len(mailgun_api.sent()) == 1


def test_with_anyone_publishing_a_delete_under_a_forged_from_does_nothing(post, client, mailgun_api, published):
    client.application.config["INBOX_PUBLISHERS"] = parse_publishers("*")
    original, reply = publish_for_alice(post, mailgun_api)
    # Mallory learnt <inbox.KEY@…> (a forwarded thread) and writes Alice's From from her own server.
    forged = answer_to(reply, "delete", sender="mallory@evil.test", verdicts=(NOT_SPAM, SPF_FAIL, DKIM_FAIL))

    answer = post(forged)

    assert answer.status_code == 200 and answer.json["deleted"] == []
    assert answer.json["reason"].startswith("nothing taken down: From alice@family.example is not authenticated")
    assert all(client.get(item["url"]).status_code == 200 for item in original["stored"])
    assert len(mailgun_api.sent()) == 1  # no confirmation to the forger
    real = post(answer_to(reply, "delete", message_id="<answer-2@family.example>"))
    assert real.json["deleted"] == [item["url"] for item in original["stored"]] and published() == []


def test_thanks_without_a_photo_stores_nothing_and_sends_no_reply(post, mailgun_api, published):
    _, reply = publish_for_alice(post, mailgun_api)

    answer = post(answer_to(reply, "thanks!"))

    assert answer.status_code == 200
    assert answer.json["stored"] == [] and "without photos" in answer.json["reason"]
    assert len(published()) == 2 and len(mailgun_api.sent()) == 1


def test_a_thread_whose_subject_starts_with_delete_takes_down_only_when_the_answer_says_delete(
    post, client, mailgun_api, published
):
    original = post(mail(("beach.jpg", PHOTO), subject="Delete after the party?", message_id="<party@family.example>"))
    reply = fields_of(mailgun_api.sent()[-1])
    assert reply["subject"] == "Re: Delete after the party?"

    thanks = post(answer_to(reply, "thanks!", subject="RE: Re: Delete after the party?"))
    more = post(answer_to(reply, "one more", ("forest.jpg", FOREST), message_id="<answer-2@family.example>"))

    assert thanks.status_code == 200 and "deleted" not in thanks.json and "without photos" in thanks.json["reason"]
    assert more.status_code == 200 and "deleted" not in more.json and len(more.json["stored"]) == 1
    assert client.get(original.json["stored"][0]["url"]).status_code == 200 and len(published()) == 2
    assert len(mailgun_api.sent()) == 2  # the reply to each mail, no confirmation
    asked = post(answer_to(reply, "delete", message_id="<answer-3@family.example>"))
    assert asked.json["deleted"] == [original.json["stored"][0]["url"]]


def test_new_photos_in_an_answer_to_the_reply_are_published_as_any_message(post, client, mailgun_api, published):
    _, reply = publish_for_alice(post, mailgun_api)
    new_photo = make_image(".jpg", color=(0, 90, 0))

    answer = post(answer_to(reply, "one more", ("forest.jpg", new_photo)))

    assert answer.status_code == 200, answer.json
    assert client.get(answer.json["stored"][0]["url"]).data == new_photo
    assert len(published()) == 3 and len(mailgun_api.sent()) == 2
    assert answer.json["stored"][0]["url"] in fields_of(mailgun_api.sent()[-1])["text"]


def test_a_delete_whose_confirmation_mailgun_cannot_take_is_confirmed_on_the_retry(post, client, mailgun_api):
    original, reply = publish_for_alice(post, mailgun_api)
    urls = [item["url"] for item in original["stored"]]
    request = answer_to(reply, "delete")
    mailgun_api.fail_next(503, count=3)

    assert post(request).status_code == 503
    retry = post(request)  # Mailgun redelivers with the same token

    assert retry.status_code == 200 and retry.json["deleted"] == urls
    assert [client.get(url).status_code for url in urls] == [404, 404]
    assert len(mailgun_api.sent()) == 2 and all(url in fields_of(mailgun_api.sent()[-1])["text"] for url in urls)


def test_an_automatic_answer_starting_with_delete_takes_down_without_a_confirmation(post, client, mailgun_api):
    original, reply = publish_for_alice(post, mailgun_api)

    answer = post(
        answer_to(reply, "Delete this mail: I am away until Monday.", headers=[("Auto-Submitted", "auto-replied")])
    )

    assert answer.status_code == 200 and answer.json["deleted"] == [item["url"] for item in original["stored"]]
    assert answer.json["reply"] == {"sent": False, "reason": "Auto-Submitted: auto-replied"}
    assert len(mailgun_api.sent()) == 1


def raw_answer(reply: dict, subject: str) -> EmailMessage:
    """A mail client's answer to our reply, as the raw-MIME route gets it; its content still to be set."""
    answer = EmailMessage(policy=email.policy.SMTP)
    answer["From"], answer["To"], answer["Subject"] = ALICE, REPLY_FROM, subject
    answer["Message-ID"] = "<raw-answer@family.example>"
    answer["In-Reply-To"], answer["References"] = reply["h:Message-Id"], reply["h:Message-Id"]
    return answer


def post_raw(client, answer: EmailMessage):
    """Post `answer` to the raw-MIME route as Mailgun does: its headers (verdicts, Received) above the mail's."""
    raw = "".join(f"{name}: {value}\r\n" for name, value in trace(NOT_SPAM, SPF_PASS, DKIM_PASS)).encode()
    fields = {"recipient": "photos@mg.example.com", "sender": "alice@family.example", "from": ALICE}
    body, content_type = multipart(
        {**fields, "subject": answer["Subject"], "body-mime": raw + bytes(answer), **signed_fields(SIGNING_KEY)}
    )
    return client.post("/webhooks/mailgun/mime", data=body, content_type=content_type)


def outlook_answer(reply: dict, said: str) -> EmailMessage:
    """Outlook's answer of HTML alone: a style block, the new text, the quote under a From: / Sent: block."""
    answer = raw_answer(reply, "RE: Holiday")
    answer["Thread-Index"] = "AQHZ1b2c3d4e5f=="
    quoted = reply["html"].split("<body>")[1].split("</body>")[0]  # our text, with its word "delete"
    answer.set_content(
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '<style><!-- /* Font Definitions */ @font-face {font-family:"Cambria Math";} --></style></head>'
        f'<body lang="EN-GB"><div class="WordSection1"><p class="MsoNormal">{said}<o:p></o:p></p>'
        '<p class="MsoNormal"><o:p>&nbsp;</o:p></p><div style="border-top:solid #E1E1E1 1.0pt">'
        "<p class=MsoNormal><b>From:</b> Family photos &lt;photos@mg.example.com&gt;<br><b>Sent:</b> "
        f"02 June 2025 10:00<br><b>Subject:</b> Re: Holiday</p></div>{quoted}</div></body></html>",
        subtype="html",
    )
    return answer


def thunderbird_answer(reply: dict, said: str) -> EmailMessage:
    """Thunderbird's plain answer as it comes by default: the quote first, the new text under it."""
    answer = raw_answer(reply, "Re: Holiday")
    quoted = "\n".join(f"> {line}".rstrip() for line in reply["text"].splitlines())  # with its word "delete"
    answer.set_content(f"On 02/06/2025 10:00, Family photos wrote:\n{quoted}\n\n{said}\n\n-- \nAlice\n")
    return answer


def wrapped_thunderbird_answer(reply: dict, said: str) -> EmailMessage:
    """Thunderbird's answer whose "On <date>, <name> wrote:" line the client wrapped in two: its first starts "On"."""
    answer = raw_answer(reply, "Re: Holiday")
    quoted = "\n".join(f"> {line}".rstrip() for line in reply["text"].splitlines())
    introduction = "On Sun, 22 Nov 2026 at 13:00, Alice Example <alice@\nexample.com> wrote:"
    answer.set_content(f"{introduction}\n{quoted}\n\n{said}\n\n-- \nAlice\n")
    return answer


@pytest.mark.parametrize("client_answer", [outlook_answer, thunderbird_answer, wrapped_thunderbird_answer])
@pytest.mark.parametrize("said, taken_down", [("Delete", True), ("thanks, lovely!", False)])
def test_an_answer_on_the_raw_mime_route_is_read_by_its_new_text(
    client, post, mailgun_api, published, client_answer, said, taken_down
):
    original, reply = publish_for_alice(post, mailgun_api)

    answer = post_raw(client, client_answer(reply, said))

    assert answer.status_code == 200, answer.json
    if taken_down:
        assert answer.json["deleted"] == [item["url"] for item in original["stored"]] and published() == []
        assert len(mailgun_api.sent()) == 2 and fields_of(mailgun_api.sent()[-1])["text"].startswith("Taken down (2)")
    else:
        assert "deleted" not in answer.json and "without photos" in answer.json["reason"]
        assert len(published()) == 2 and len(mailgun_api.sent()) == 1


@pytest.mark.parametrize("said", ["Delete both:", "delete these please:"])
def test_a_delete_written_above_the_quote_it_points_at_is_seen(client, post, mailgun_api, published, said):
    # A line ending in ':' directly above a quote was taken for the client's "… wrote:" line and
    # left out with the quote, so this delete went unseen and the photos stayed up.
    original, reply = publish_for_alice(post, mailgun_api)
    answer = raw_answer(reply, "Re: Holiday")
    quoted = "\n".join(f"> {line}".rstrip() for line in reply["text"].splitlines())
    answer.set_content(f"{said}\n{quoted}\n\n-- \nAlice\n")

    answered = post_raw(client, answer)

    assert answered.status_code == 200, answered.json
    assert answered.json["deleted"] == [item["url"] for item in original["stored"]] and published() == []


@pytest.mark.parametrize(
    "above",
    [
        "On 2 of them I changed my mind\nOn Sun, 22 Nov 2026 at 13:00, Alice Example <alice@example.com> wrote:",
        "On 2 of them I changed my mind\n\nOn Sun, 22 Nov 2026 at 13:00, Alice Example <alice@\nexample.com> wrote:",
    ],
)
def test_a_first_line_of_new_text_above_a_quotes_introduction_is_kept(above):
    # Only the one line a client wrapped the introduction from goes with it: not a whole one's line above it,
    # nor a line apart from it by a blank line.
    assert new_text(f"{above}\n> Published (2):\n> http://x/1.jpg").startswith("On 2 of them I changed my mind")


@pytest.mark.parametrize("said, taken_down", [("Delete", True), ("thanks, lovely!", False)])
def test_an_html_answer_whose_markup_breaks_the_parser_is_read_up_to_the_break(
    client, post, mailgun_api, published, said, taken_down
):
    # html.parser raises AssertionError at a broken marked section ("<![" not followed by a keyword).
    original, reply = publish_for_alice(post, mailgun_api)
    answer = raw_answer(reply, "RE: Holiday")
    answer.set_content(f"<html><body><p>{said}</p><![<![ broken <![x]> <p>Delete</p></body></html>", subtype="html")

    answered = post_raw(client, answer)

    assert answered.status_code == 200, answered.json
    assert ("deleted" in answered.json) is taken_down
    assert len(published()) == (0 if taken_down else 2)


NESTED_FROM = "(" * 1500 + "alice@family.example"


def test_a_from_of_deeply_nested_comments_is_refused_with_406_and_the_reason(post, mailgun_api, published):
    answer = post(mail(("beach.jpg", PHOTO), from_header=NESTED_FROM))

    assert answer.status_code == 406
    assert answer.json["reason"] == "not published: the From header cannot be read: its comments '(' nest too deeply"
    assert published() == [] and mailgun_api.sent() == []


def test_with_anyone_publishing_such_a_from_is_published_but_gets_no_reply(client, post, mailgun_api, published):
    client.application.config["INBOX_PUBLISHERS"] = parse_publishers("*")
    answer = post(mail(("beach.jpg", PHOTO), from_header=NESTED_FROM))

    assert answer.status_code == 200, answer.json
    assert len(answer.json["stored"]) == 1 and len(published()) == 1
    assert answer.json["reply"] == {
        "sent": False,
        "reason": "the From header cannot be read: its comments '(' nest too deeply",
    }
    assert mailgun_api.sent() == []

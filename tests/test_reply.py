"""The reply mail: when not to answer, what it says and threads to, sending it to Mailgun, the dev outbox."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import time
import tracemalloc
from dataclasses import dataclass, replace

import pytest
import requests

from inbox import create_app, messages_api
from inbox.messages_api import ReplyRefused, ReplyUnavailable, send_reply, write_outbox
from inbox.reply import compose_deletion_confirmation, compose_reply, reply_blocker
from inbox.reply_commands import is_delete_command, replied_key
from inbox.send_command import AUTHENTICATED_TRACE
from tests.harness import mailgun_form, pasted_photo

REPLY_FROM = "Photos <photos@example.com>"


@dataclass(frozen=True)
class Mail:
    """The fields of an InboundMessage that replies read."""

    sender: str = "alice@example.org"
    from_header: str = "Alice <alice@example.org>"
    subject: str = "Holiday"
    message_id: str = "<m1@example.org>"
    headers: tuple = (("Message-Id", "<m1@example.org>"), ("References", "<a@x.org> <b@x.org>"))


STORED = [
    {"attachment": "attachment-1", "filename": "beach.jpg", "url": "https://cdn.example.com/images/1f0e.jpg"},
    {"attachment": "attachment-2", "filename": "a&b.png", "url": "https://cdn.example.com/images/2a9c.png?v=1&x=2"},
]
REJECTED = [{"attachment": "attachment-3", "filename": "<script>.exe", "reason": "not an image: <b>PE32</b>"}]


def reply(mail=Mail(), **overrides) -> dict:
    options = {
        "reply_from": REPLY_FROM,
        "key": "k123",
        "message_id_domain": "mg.example.com",
        "stored": STORED,
        "rejected": REJECTED,
    }
    return compose_reply(mail, **{**options, **overrides})


def test_an_ordinary_mail_may_be_answered():
    assert reply_blocker(Mail(), REPLY_FROM) is None


@pytest.mark.parametrize(
    "sender",
    [
        "",
        "<>",
        "MAILER-DAEMON@mx.example.org",
        "postmaster@example.org",
        "noreply@example.org",
        "no-reply@example.org",
        "owner-photos@lists.example.org",
        "photos-request@lists.example.org",
    ],
)
def test_null_and_mail_system_senders_get_no_reply(sender):
    assert reply_blocker(Mail(sender=sender), REPLY_FROM)


@pytest.mark.parametrize(
    "name, value",
    [
        ("Auto-Submitted", "auto-replied"),
        ("auto-submitted", "auto-generated; type=vacation"),
        ("List-Id", "<photos.lists.example.org>"),
        ("List-Unsubscribe", "<mailto:leave@example.org>"),
        ("Precedence", "bulk"),
        ("Precedence", "List"),
        ("Precedence", "junk"),
        ("X-Auto-Response-Suppress", "All"),
        ("X-Auto-Response-Suppress", "DR, AutoReply"),
    ],
)
def test_automatic_and_list_mail_gets_no_reply(name, value):
    mail = Mail(headers=(*Mail.headers, (name, value)))
    assert reply_blocker(mail, REPLY_FROM)


@pytest.mark.parametrize(
    "name, value", [("Auto-Submitted", "no"), ("Precedence", "first-class"), ("X-Auto-Response-Suppress", "DR, OOF")]
)
def test_harmless_values_of_those_headers_still_get_a_reply(name, value):
    assert reply_blocker(Mail(headers=(*Mail.headers, (name, value))), REPLY_FROM) is None


def test_mail_from_our_own_reply_address_gets_no_reply():
    assert "our own reply address" in reply_blocker(Mail(sender="Photos@Example.com"), REPLY_FROM)
    assert "our own reply address" in reply_blocker(Mail(from_header="photos@example.com"), REPLY_FROM)


def test_the_reply_goes_to_the_envelope_sender_threaded_and_marked_automatic():
    fields = reply(Mail(sender="bounce+alice@mail.example.org"))
    assert fields["to"] == "bounce+alice@mail.example.org"
    assert fields["from"] == REPLY_FROM
    assert fields["subject"] == "Re: Holiday"
    assert fields["h:In-Reply-To"] == "<m1@example.org>"
    assert fields["h:References"] == "<a@x.org> <b@x.org> <m1@example.org>"
    assert fields["h:Auto-Submitted"] == "auto-replied"
    assert fields["h:Message-Id"] == "<inbox.k123@mg.example.com>"
    assert (fields["o:tracking"], fields["o:tracking-clicks"], fields["o:tracking-opens"]) == ("no", "no", "no")


def test_an_existing_re_is_not_doubled_and_header_breaks_are_flattened():
    assert reply(Mail(subject="RE: Holiday"))["subject"] == "RE: Holiday"
    assert reply(Mail(subject="Holiday\r\nBcc: victim@example.net"))["subject"] == "Re: Holiday Bcc: victim@example.net"
    assert reply(Mail(subject=""))["subject"] == "Re: your photos"


def test_the_reply_lists_every_url_and_rejection_with_html_escaped():
    fields = reply()
    for item in STORED:
        assert item["url"] in fields["text"]
    assert "not an image: <b>PE32</b>" in fields["text"]
    page = fields["html"]
    assert '<img src="https://cdn.example.com/images/1f0e.jpg"' in page
    assert 'href="https://cdn.example.com/images/2a9c.png?v=1&amp;x=2"' in page
    assert "a&amp;b.png" in page
    assert "&lt;script&gt;.exe: not an image: &lt;b&gt;PE32&lt;/b&gt;" in page
    assert "<script>" not in page and "<b>PE32" not in page


def test_rejections_for_one_reason_share_a_line_naming_the_first_few():
    too_many = "more than 100 images in one mail: send those after the first 100 in another"
    pdf = "not an accepted image: the content is application/pdf"
    rejected = [
        {"attachment": f"attachment-{n}", "filename": f"IMG_{n}.jpg", "reason": too_many} for n in range(101, 151)
    ]
    rejected[1:1] = [{"attachment": "attachment-7", "filename": "", "reason": pdf}]
    rejected.append({"attachment": "attachment-160", "filename": "b&w.pdf", "reason": pdf})

    fields = reply(rejected=rejected)

    listed = fields["text"].split("Not published (52):\n\n")[1].split("\n\n")[0].splitlines()
    assert listed == [
        f"  IMG_101.jpg, IMG_102.jpg, IMG_103.jpg and 47 more: {too_many}",
        f"  attachment-7, b&w.pdf: {pdf}",
    ]
    assert f"<li>attachment-7, b&amp;w.pdf: {pdf}</li>" in fields["html"]
    assert fields["html"].count("<li>") == len(STORED) + 2


def test_four_names_are_listed_rather_than_three_and_one_more():
    rejected = [{"attachment": f"attachment-{n}", "filename": f"{n}.txt", "reason": "text"} for n in range(4)]
    assert "  0.txt, 1.txt, 2.txt, 3.txt: text" in reply(rejected=rejected)["text"]


def test_a_reply_to_our_reply_is_traced_back_by_its_message_id():
    ours = reply()
    answer = Mail(
        subject=ours["subject"],
        headers=(
            ("In-Reply-To", ours["h:Message-Id"]),
            ("References", ours["h:References"] + " " + ours["h:Message-Id"]),
        ),
    )
    assert replied_key(answer, "mg.example.com") == "k123"
    assert replied_key(answer, "other.example.com") is None
    with pytest.raises(ValueError):
        reply(key="../../etc")


def test_an_answer_deep_in_a_thread_is_traced_to_the_reply_it_answers_not_to_earlier_ones():
    thread = "<m1@example.org> <inbox.first@mg.example.com> <m2@example.org> <inbox.second@mg.example.com>"
    answer = Mail(headers=(("In-Reply-To", "<inbox.second@mg.example.com>"), ("References", thread)))
    assert replied_key(answer, "mg.example.com") == "second"
    # No In-Reply-To, or one naming none of ours: the latest reply of ours in References.
    assert replied_key(Mail(headers=(("References", thread + " <m3@example.org>"),)), "mg.example.com") == "second"
    answers_own_mail = Mail(headers=(("In-Reply-To", "<m2@example.org>"), ("References", thread)))
    assert replied_key(answers_own_mail, "mg.example.com") == "second"


def test_the_deletion_confirmation_threads_under_the_takedown_request():
    request = Mail(subject="Re: Holiday", message_id="<d1@example.org>", headers=(("Message-Id", "<d1@example.org>"),))
    fields = compose_deletion_confirmation(
        request,
        reply_from=REPLY_FROM,
        key="k123.deleted",
        message_id_domain="mg.example.com",
        deleted=[STORED[1]["url"]],
    )
    assert fields["subject"] == "Re: Holiday" and fields["h:In-Reply-To"] == "<d1@example.org>"
    assert STORED[1]["url"] in fields["text"] and "?v=1&amp;x=2" in fields["html"]
    assert fields["h:Auto-Submitted"] == "auto-replied"


@pytest.mark.parametrize(
    "text, subject, wanted",
    [
        ("delete", "", True),
        ('  \n"Delete" please', "", True),
        ("DELETE!", "", True),
        ("", "Re: RE:  delete", True),
        ("thanks", "Re: delete", True),
        ("deleted already?", "Re: Holiday", False),
        ("please delete", "Re: Holiday", False),
        ("> delete", "Re: Holiday", False),
        ("", "", False),
        ("", "Re: Re: AW: delete", True),
        ("", "sv:re :  Delete them", True),
        ("", "Re: Holiday delete", False),
        ("", "Re: " * 20 + "delete", True),
    ],
)
def test_delete_must_be_the_first_word(text, subject, wanted):
    assert is_delete_command(text, subject) is wanted


def test_a_subject_of_a_million_re_prefixes_is_read_at_once():
    started = time.monotonic()
    assert is_delete_command("thanks", "re:" * 1_000_000 + "delete") is False
    assert time.monotonic() - started < 1


NESTED = "(" * 1500 + "alice@example.org"
HUGE = "alice@example.org," + "a," * 2_000_000


@pytest.mark.parametrize(
    "mail, reason",
    [
        (Mail(sender=NESTED), "the envelope sender cannot be read: its comments '(' nest too deeply"),
        (Mail(from_header=NESTED), "the From header cannot be read: its comments '(' nest too deeply"),
        (Mail(sender=HUGE), "the envelope sender is longer than 2000 characters"),
        (Mail(from_header=HUGE), "the From header is longer than 2000 characters"),
    ],
    ids=["nested sender", "nested From", "huge sender", "huge From"],
)
def test_a_sender_or_from_that_cannot_be_read_gets_no_reply_with_the_reason(mail, reason):
    started = time.monotonic()
    assert reply_blocker(mail, REPLY_FROM) == reason
    assert time.monotonic() - started < 1


def test_real_senders_with_names_and_comments_are_still_answered():
    mail = Mail(sender="<alice@example.org> (Alice)", from_header='"Smith, Alice" (home) <Alice@Example.org>')
    assert reply_blocker(mail, REPLY_FROM) is None
    assert reply(mail)["to"] == "alice@example.org"


def peak_megabytes(work) -> float:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_millions_of_references_cost_no_memory_to_trace_or_thread():
    many = "<a>" * 3_000_000
    answer = Mail(headers=(("In-Reply-To", "<inbox.k1@mg.example.com>"), ("References", many)))
    assert peak_megabytes(lambda: replied_key(answer, "mg.example.com")) < 1
    assert replied_key(answer, "mg.example.com") == "k1"
    without_parent = Mail(headers=(("References", "<inbox.k0@mg.example.com>" + many + "<inbox.k2@mg.example.com>"),))
    assert peak_megabytes(lambda: replied_key(without_parent, "mg.example.com")) < 1
    assert replied_key(without_parent, "mg.example.com") == "k2"
    assert peak_megabytes(lambda: reply(answer)) < 1
    assert reply(answer)["h:References"] == "<a> <m1@example.org>"


def test_a_long_real_references_keeps_its_last_ids_whole():
    ids = [f"<{n:03}{'x' * 225}@mail.example.org>" for n in range(40)]
    fields = reply(Mail(headers=(("References", "\r\n ".join(ids)),)))
    assert fields["h:References"] == " ".join([*ids[-19:], "<m1@example.org>"])


def test_send_reply_posts_the_fields_and_returns_mailguns_id(mailgun_api):
    fields = reply()
    sent_id = send_reply(mailgun_api.api_url, mailgun_api.domain, mailgun_api.api_key, fields)
    [received] = mailgun_api.sent()
    assert received["id"] == sent_id and sent_id.endswith("@mg.example.com>")
    assert {name: values[0] for name, values in received["fields"].items()} == fields


def test_replies_from_one_thread_reuse_one_connection_to_mailgun(mailgun_api):
    for _ in range(3):
        send_reply(mailgun_api.api_url, mailgun_api.domain, mailgun_api.api_key, reply())
    connections = {received["connection"] for received in mailgun_api.sent()}
    assert len(mailgun_api.sent()) == 3 and len(connections) == 1  # one TCP (and, with Mailgun, TLS) handshake


def test_a_connection_idle_too_long_is_not_reused(mailgun_api, monkeypatch):
    monkeypatch.setattr(messages_api, "REUSE_IDLE_SECONDS", 0.3)
    send_reply(mailgun_api.api_url, mailgun_api.domain, mailgun_api.api_key, reply())
    send_reply(mailgun_api.api_url, mailgun_api.domain, mailgun_api.api_key, reply())  # warm: the same one
    time.sleep(0.5)  # Mailgun may be closing it now
    send_reply(mailgun_api.api_url, mailgun_api.domain, mailgun_api.api_key, reply())
    first, second, third = (received["connection"] for received in mailgun_api.sent())
    assert first == second != third


def test_a_single_503_is_retried(mailgun_api):
    mailgun_api.fail_next(503)
    assert send_reply(mailgun_api.api_url, mailgun_api.domain, mailgun_api.api_key, reply())
    assert len(mailgun_api.sent()) == 1


@pytest.mark.parametrize("status", [503, 429, 500])
def test_mailgun_failing_on_is_unavailable(mailgun_api, status):
    mailgun_api.fail_next(status, count=5)
    with pytest.raises(ReplyUnavailable) as error:
        send_reply(mailgun_api.api_url, mailgun_api.domain, mailgun_api.api_key, reply())
    assert str(status) in str(error.value)
    assert mailgun_api.sent() == []


def test_a_long_retry_after_does_not_hold_the_delivery(mailgun_api):
    # urllib3 sleeps as long as Retry-After says; an hour of it would hold a worker thread for two.
    mailgun_api.fail_next(429, count=5, retry_after=3600)
    start = time.monotonic()
    with pytest.raises(ReplyUnavailable):
        send_reply(mailgun_api.api_url, mailgun_api.domain, mailgun_api.api_key, reply())
    assert time.monotonic() - start < 5
    assert mailgun_api.sent() == []


def test_a_wrong_key_is_refused_naming_the_variable(mailgun_api):
    with pytest.raises(ReplyRefused) as error:
        send_reply(mailgun_api.api_url, mailgun_api.domain, "key-wrong", reply())
    assert "MAILGUN_API_KEY (401)" in str(error.value) and "MAILGUN_API_URL" in str(error.value)


def test_an_unknown_domain_is_refused_naming_domain_and_region(mailgun_api):
    with pytest.raises(ReplyRefused) as error:
        send_reply(mailgun_api.api_url, "mg.other.example", mailgun_api.api_key, reply())
    assert "MAILGUN_DOMAIN=mg.other.example" in str(error.value) and "api.eu.mailgun.net" in str(error.value)


def test_the_standin_reads_multipart_posts_as_mailgun_does(mailgun_api):
    url = f"{mailgun_api.api_url}/{mailgun_api.domain}/messages"
    answer = requests.post(
        url,
        auth=("api", mailgun_api.api_key),
        timeout=5,
        data={"to": "alice@example.org", "subject": "Grüße"},
        files={"attachment": ("a.txt", b"hi")},
    )
    assert answer.status_code == 200 and answer.json()["message"] == "Queued. Thank you."
    assert mailgun_api.sent()[0]["fields"] == {"to": ["alice@example.org"], "subject": ["Grüße"], "attachment": ["hi"]}


def test_connection_refused_is_unavailable():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(ReplyUnavailable) as error:
            send_reply(f"http://127.0.0.1:{port}/v3", "mg.example.com", "key", reply(), timeout=(2, 2))
    assert "did not answer" in str(error.value)


def test_no_answer_in_time_is_unavailable():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v3"
        with pytest.raises(ReplyUnavailable) as error:
            send_reply(url, "mg.example.com", "key", reply(), timeout=(2, 0.5))
    assert "timed out" in str(error.value)


def test_the_outbox_mail_reads_back_as_the_reply(tmp_path):
    fields = reply(replace(Mail(), subject="Ferien in Zürich"))
    path = write_outbox(tmp_path / "outbox", fields)
    assert path.suffix == ".eml" and path.parent == tmp_path / "outbox"
    with open(path, "rb") as file:
        mail = email.message_from_binary_file(file, policy=email.policy.default)
    assert mail["To"] == "alice@example.org" and mail["Subject"] == "Re: Ferien in Zürich"
    assert mail["Message-Id"] == "<inbox.k123@mg.example.com>" and mail["Auto-Submitted"] == "auto-replied"
    assert mail["In-Reply-To"] == "<m1@example.org>" and mail["Date"]
    assert mail.get_content_type() == "multipart/alternative"
    assert STORED[0]["url"] in mail.get_body(("plain",)).get_content()
    assert '<img src="https://cdn.example.com/images/1f0e.jpg"' in mail.get_body(("html",)).get_content()
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_an_outbox_that_cannot_be_written_later_gets_a_503_for_a_redelivery_not_a_500(settings, tmp_path):
    outbox = tmp_path / "outbox"
    client = create_app({**settings, "INBOX_OUTBOX": str(outbox)}).test_client()
    shutil.rmtree(outbox, ignore_errors=True)
    outbox.write_text("")  # the folder became a file (or the disk filled): no reply can be written there

    answer = client.post("/webhooks/mailgun", data=mailgun_form(("a.jpg", pasted_photo()), trace=AUTHENTICATED_TRACE))

    assert answer.status_code == 503 and "Mailgun will retry" in answer.json["reason"]

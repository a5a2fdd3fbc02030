"""Start-up validation: a wrong setting stops the app with a message naming it and the fix."""

import pytest

from inbox import ConfigError, create_app
from inbox.config import load_config
from inbox.send_command import AUTHENTICATED_TRACE
from tests.harness import SIGNING_KEY, mailgun_form, pasted_photo

MINIMAL = {"MAILGUN_WEBHOOK_SIGNING_KEY": "k", "INBOX_PUBLISHERS": "*"}


def test_refuses_to_start_without_a_signing_key(tmp_path):
    with pytest.raises(ConfigError, match="MAILGUN_WEBHOOK_SIGNING_KEY is not set.*not the API key"):
        create_app({"STORAGE_PATH": str(tmp_path)})


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("INBOX_MAX_ATTACHMENT_BYTES", "25MB", "INBOX_MAX_ATTACHMENT_BYTES='25MB' is not a whole number"),
        ("INBOX_MAX_ATTACHMENT_BYTES", "0", "INBOX_MAX_ATTACHMENT_BYTES=0 is too small"),
        ("INBOX_SIGNATURE_MAX_AGE", "10", "INBOX_SIGNATURE_MAX_AGE=10 is too small"),
        ("INBOX_REJECT_STATUS", "422", "use 415 .* or 406"),
        ("PUBLIC_BASE_URL", "cdn.example.com", "PUBLIC_BASE_URL='cdn.example.com' is not an absolute http"),
        ("MAILGUN_API_URL", "api.mailgun.net", "MAILGUN_API_URL="),
        ("MAILGUN_API_URL", "https://api.eu.mailgun.net", "does not end in /v3.*https://api.eu.mailgun.net/v3"),
        ("MAILGUN_DOMAIN", "https://mg.example.com/", "MAILGUN_DOMAIN='https://mg.example.com/' is not a domain"),
        ("MAILGUN_DOMAIN", "photos@mg.example.com", "MAILGUN_DOMAIN='photos@mg.example.com' is not a domain"),
        ("MAILGUN_DOMAIN", "mg.example.com", "MAILGUN_DOMAIN is set but MAILGUN_API_KEY is not: replies need both"),
        ("INBOX_REPLY_FROM", "not an address", "INBOX_REPLY_FROM='not an address' is not one mail address"),
        ("INBOX_REPLY_FROM", "a@example.com, b@example.com", "INBOX_REPLY_FROM=.* is not one mail address"),
        ("INBOX_REPLY_FROM", "photos@", "INBOX_REPLY_FROM='photos@' is not one mail address"),
        ("STORAGE_CONTAINER", "../etc", "STORAGE_CONTAINER='../etc' is not a container name"),
        ("STORAGE_RECEIPTS_CONTAINER", "images", "must differ from STORAGE_CONTAINER"),
        ("STORAGE_RECEIPTS_CONTAINER", " images", "must differ from STORAGE_CONTAINER"),
        ("STORAGE_RECEIPTS_CONTAINER", ".spool", "STORAGE_RECEIPTS_CONTAINER='.spool' is not a container name"),
        ("STORAGE_RECEIPTS_CONTAINER", "images/private", "STORAGE_RECEIPTS_CONTAINER='images/private' is not a"),
        ("STORAGE_SECURE", "maybe", "STORAGE_SECURE='maybe'"),
        ("STORAGE_PORT", "http", "STORAGE_PORT='http'"),
        ("INBOX_PUBLISHERS", "alice", "INBOX_PUBLISHERS entry 'alice' is neither an address"),
        ("INBOX_PUBLISHERS", "*@friends.example", "INBOX_PUBLISHERS entry .* did you mean @friends.example\\?"),
        ("INBOX_STRIP_LOCATION", "maybe", "INBOX_STRIP_LOCATION='maybe'"),
        ("INBOX_CACHE_MAX_AGE", "a day", "INBOX_CACHE_MAX_AGE='a day' is not a whole number"),
    ],
)
def test_names_the_wrong_variable_and_what_to_put_there(name, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config({**MINIMAL, name: value})


def test_unwritable_storage_path_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="STORAGE_PATH=.* cannot be created"):
        create_app({**MINIMAL, "STORAGE_PATH": str(blocker / "storage")})


def test_a_receipts_container_outside_the_storage_path_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="STORAGE_RECEIPTS_CONTAINER='..' is not a container name"):
        create_app({**MINIMAL, "STORAGE_PATH": str(tmp_path / "storage"), "STORAGE_RECEIPTS_CONTAINER": ".."})
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # no name key nor records beside STORAGE_PATH


def test_an_outbox_that_cannot_be_written_is_named_at_start_up(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="INBOX_OUTBOX=.*/file/outbox' cannot be written .*pick a writable folder"):
        create_app({**MINIMAL, "STORAGE_PATH": str(tmp_path / "storage"), "INBOX_OUTBOX": str(blocker / "outbox")})


def test_defaults_and_limits():
    config = load_config({**MINIMAL, "INBOX_MAX_ATTACHMENT_BYTES": ""})
    assert config["INBOX_MAX_ATTACHMENT_BYTES"] == 25 * 1024 * 1024
    assert config["INBOX_SIGNATURE_MAX_AGE"] >= 8 * 3600  # covers Mailgun's retries
    assert config["STORAGE_CONTAINER"] == "images"
    assert config["STORAGE_RECEIPTS_CONTAINER"] == "images-receipts"
    assert config["INBOX_REJECT_STATUS"] == 415
    # a several-MB HTML body must fit (Flask's default is 500 kB), but the request stays bounded
    assert config["MAX_FORM_MEMORY_SIZE"] >= 25 * 1024 * 1024
    assert config["MAX_CONTENT_LENGTH"] == 100 * 1024 * 1024


def test_reads_the_environment_when_given_no_mapping(monkeypatch, tmp_path):
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", "from-env")
    monkeypatch.setenv("INBOX_PUBLISHERS", "@example.com")
    monkeypatch.setenv("STORAGE_PATH", str(tmp_path / "s"))
    monkeypatch.setenv("STORAGE_CONTAINER", "photos")
    app = create_app()
    assert app.config["MAILGUN_WEBHOOK_SIGNING_KEY"] == "from-env"
    assert (tmp_path / "s" / "photos").is_dir() and (tmp_path / "s" / "photos-receipts").is_dir()


def test_production_refuses_to_start_without_a_publishers_list(tmp_path):
    with pytest.raises(ConfigError, match=r"INBOX_PUBLISHERS is not set.*set it to \* to let anyone publish"):
        create_app({"MAILGUN_WEBHOOK_SIGNING_KEY": "k", "STORAGE_PATH": str(tmp_path)})


def test_whitespace_pasted_around_the_api_key_and_domain_does_not_stop_replies(tmp_path, mailgun_api):
    # A key read from a secrets file ends in a newline; a domain copied from a web page, in a space.
    app = create_app(
        {
            "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
            "INBOX_PUBLISHERS": "*",
            "STORAGE_PATH": str(tmp_path / "storage"),
            "MAILGUN_API_URL": mailgun_api.api_url + "/",
            "MAILGUN_API_KEY": mailgun_api.api_key + "\n",
            "MAILGUN_DOMAIN": f" {mailgun_api.domain} ",
            "INBOX_REPLY_FROM": " Family photos <photos@mg.example.com> ",
        }
    )
    form = mailgun_form(("a.jpg", pasted_photo()), trace=AUTHENTICATED_TRACE)
    answer = app.test_client().post("/webhooks/mailgun", data=form)

    assert answer.status_code == 200 and answer.json["reply"]["sent"] is True
    assert [sent["domain"] for sent in mailgun_api.sent()] == [mailgun_api.domain]

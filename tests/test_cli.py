"""`inbox serve` and `inbox send`: the local try-out a newcomer runs."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from gunicorn.app.base import BaseApplication
from PIL import Image

from inbox import cli, workspace
from tests.harness import INBOX
from tests.processes import free_port, scrubbed_environ

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples"


def send(folder, url, *args, **env):
    return subprocess.run(
        [INBOX, "send", "--url", f"{url}/webhooks/mailgun", *args],
        cwd=folder,
        env=scrubbed_environ(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_makes_a_private_development_key_that_send_uses(served, images):
    folder, url = served
    key_file = folder / "var" / "dev-signing-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    (folder / "photo.webp").write_bytes(images[".webp"])

    result = send(folder, url, "photo.webp")

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    stored = answer["stored"][0]
    assert stored["url"].startswith(f"{url}/files/images/") and stored["content_type"] == "image/webp"
    assert requests.get(stored["url"], timeout=10).content == images[".webp"]
    assert (folder / "var" / "storage" / "images" / stored["url"].rsplit("/", 1)[1]).exists()


def test_the_development_key_is_kept_in_its_file_and_never_printed(tmp_path, monkeypatch, clean_environ, capsys):
    monkeypatch.chdir(tmp_path)

    key = workspace.development_key()

    said = capsys.readouterr().err
    assert key == (tmp_path / "var" / "dev-signing-key").read_text() and len(key) == 64
    assert "var/dev-signing-key" in said and key not in said
    assert workspace.development_key() == key and capsys.readouterr().err == ""


def test_send_reuses_a_message_id_to_show_a_redelivery(served, images):
    folder, url = served
    (folder / "a.png").write_bytes(images[".png"])
    first = send(folder, url, "--message-id", "<same@x>", "a.png")
    again = send(folder, url, "--message-id", "<same@x>", "a.png")
    assert json.loads(first.stdout)["stored"] == json.loads(again.stdout)["stored"]
    assert "--- the reply someone@example.com would get (var/outbox/" in first.stderr
    assert "--- no second reply: the one someone@example.com got when this mail was first delivered" in again.stderr


def test_send_reports_a_rejection_with_a_failing_exit_code(served):
    folder, url = served
    (folder / "evil.jpg").write_text("<html><script>alert(1)</script></html>")
    result = send(folder, url, "evil.jpg")
    assert result.returncode == 1
    assert json.loads(result.stdout)["rejected"][0]["content_type"] == "text/html"


def test_send_elsewhere_explains_where_the_key_is_instead_of_making_one(served, tmp_path, images):
    _, url = served
    (tmp_path / "a.jpg").write_bytes(images[".jpg"])
    result = send(tmp_path, url, "a.jpg")
    assert result.returncode == 2
    assert "no signing key here" in result.stderr and "MAILGUN_WEBHOOK_SIGNING_KEY" in result.stderr
    assert not (tmp_path / "var").exists()

    wrong = send(tmp_path, url, "a.jpg", MAILGUN_WEBHOOK_SIGNING_KEY="not-the-servers-key")
    assert wrong.returncode == 1
    assert "the server refused the signature" in wrong.stderr


def test_send_explains_missing_files_and_unreachable_servers(served):
    folder, _ = served
    missing = send(folder, "http://127.0.0.1:1", "nope.jpg")
    assert missing.returncode == 2 and "no such file: nope.jpg" in missing.stderr
    (folder / "holiday").mkdir()
    a_folder = send(folder, "http://127.0.0.1:1", "holiday")
    assert a_folder.returncode == 2 and "holiday is a folder: name the files in it (holiday/*.jpg)" in a_folder.stderr
    (folder / "x.jpg").write_bytes(b"\xff\xd8\xff")
    down = send(folder, f"http://127.0.0.1:{free_port()}", "x.jpg")
    assert down.returncode == 2 and "Is `inbox serve` running?" in down.stderr


def test_serve_binds_only_to_loopback(served):
    _, url = served
    port = url.rsplit(":", 1)[1]
    listening = Path("/proc/net/tcp").read_text()
    # 0100007F is 127.0.0.1 in /proc/net/tcp's little-endian hex
    assert f"0100007F:{int(port):04X}" in listening
    assert f"00000000:{int(port):04X}" not in listening


def test_serve_says_what_is_wrong_instead_of_starting(tmp_path):
    result = subprocess.run(
        [INBOX, "serve", "--port", str(free_port())],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=scrubbed_environ(INBOX_REJECT_STATUS="500"),
        timeout=30,
    )
    assert result.returncode == 2
    assert "INBOX_REJECT_STATUS='500'" in result.stderr


@pytest.mark.parametrize(
    "option, value, says",
    [
        ("--port", "99999", "is not a port number (1-65535)"),
        ("--port", "0", "is not a port number (1-65535)"),
        ("--port", "http", "is not a port number (1-65535)"),
        ("--workers", "0", "is not a number of workers (1 or more)"),
        ("--workers", "two", "is not a number of workers (1 or more)"),
    ],
)
def test_serve_refuses_a_port_or_worker_count_that_is_not_one_with_a_usage_error(tmp_path, option, value, says):
    result = subprocess.run(
        [INBOX, "serve", option, value],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=scrubbed_environ(),
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"argument {option}: {value} {says}" in result.stderr


def test_the_readme_example_stores_the_sample_photo_and_rejects_the_pdf(served):
    folder, url = served
    result = send(folder, url, str(EXAMPLES / "photo.jpg"), str(EXAMPLES / "notes.pdf"))

    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("HTTP 200 OK\n")
    answer = json.loads(result.stdout)
    assert [item["filename"] for item in answer["stored"]] == ["photo.jpg"]
    assert answer["rejected"][0]["reason"] == "not an accepted image: the content is application/pdf"
    assert requests.get(answer["stored"][0]["url"], timeout=10).content == (EXAMPLES / "photo.jpg").read_bytes()


def test_the_sample_photo_is_small_and_carries_no_location():
    photo = Image.open(EXAMPLES / "photo.jpg")
    assert photo.format == "JPEG" and (EXAMPLES / "photo.jpg").stat().st_size < 16 * 1024
    assert not photo.getexif().get_ifd(0x8825)  # the GPS IFD
    assert (EXAMPLES / "notes.pdf").read_bytes().startswith(b"%PDF-")


def test_send_shows_the_status_of_a_refusal(served, tmp_path):
    folder, url = served
    (folder / "notes.txt").write_text("no photo here")
    result = send(folder, url, "notes.txt")
    assert result.returncode == 1
    assert result.stderr.startswith("HTTP 415 UNSUPPORTED MEDIA TYPE\n")


@pytest.mark.parametrize(
    "command, options",
    [
        ("serve", ["--port", "--workers"]),
        ("send", ["--url", "--from", "--to", "--subject", "--message-id", "FILE"]),
    ],
)
def test_every_option_has_a_help_text(capsys, command, options):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = capsys.readouterr().out
    for option in options:
        # argparse puts the help text on the option's line or, when the option is long, on the next one
        first, following = re.search(rf"^(  {option}\b.*)\n(.*)", text, re.MULTILINE).groups()
        assert len(first.split()) > 2 or (following.strip() and following.startswith(" " * 5)), option


def test_send_prints_the_reply_and_a_delete_answer_takes_the_photo_down(served):
    folder, url = served
    result = send(folder, url, "--from", "alice@example.org", "--subject", "Holiday", str(EXAMPLES / "photo.jpg"))

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    photo_url, outbox = answer["stored"][0]["url"], answer["reply"]["outbox"]
    assert (folder / outbox).is_file() and outbox.startswith("var/outbox/")
    assert f"--- the reply alice@example.org would get ({outbox}) ---\nYour photos are published (1):" in result.stderr
    assert f"photo.jpg: {photo_url}" in result.stderr
    reply_id = re.search(r" --in-reply-to '(<inbox\.[\w.-]+@example\.com>)' --text delete", result.stderr).group(1)
    assert requests.get(photo_url, timeout=10).status_code == 200

    taken = send(
        folder,
        url,
        "--from",
        "alice@example.org",
        "--subject",
        "Re: Holiday",
        "--in-reply-to",
        reply_id,
        "--text",
        "delete",
    )

    assert taken.returncode == 0, taken.stderr
    assert json.loads(taken.stdout)["deleted"] == [photo_url]
    assert f"Taken down (1):\n\n  {photo_url}" in taken.stderr
    assert requests.get(photo_url, timeout=10).status_code == 404


def test_the_takedown_hint_pasted_as_printed_takes_the_photo_down(served):
    folder, url = served  # on a port other than 8000, so the hint needs --url
    options = ["--from", "alice@family.example", "--to", "photos@family.example", str(EXAMPLES / "photo.jpg")]
    result = send(folder, url, *options)
    photo_url = json.loads(result.stdout)["stored"][0]["url"]
    hint = re.search(r"^inbox: to take them down by reply: (.*)$", result.stderr, re.MULTILINE).group(1)

    pasted = subprocess.run(
        shlex.split(hint), cwd=folder, env=scrubbed_environ(), capture_output=True, text=True, timeout=60
    )

    assert pasted.returncode == 0, pasted.stderr
    assert json.loads(pasted.stdout)["deleted"] == [photo_url]
    assert requests.get(photo_url, timeout=10).status_code == 404


def test_the_command_serve_suggests_on_another_port_reaches_it(served, monkeypatch, capsys, clean_environ):
    folder, url = served
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "argv", [INBOX, "serve"])
    monkeypatch.setattr(BaseApplication, "run", lambda application: None)  # the banner, not a second server

    assert cli.main(["serve", "--port", url.rsplit(":", 1)[1]]) == 0

    suggested = re.search(r"from this folder try: (.*) PHOTO\.jpg$", capsys.readouterr().err, re.MULTILINE).group(1)
    tried = subprocess.run(
        [*shlex.split(suggested), str(EXAMPLES / "photo.jpg")],
        cwd=folder,
        env=scrubbed_environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tried.returncode == 0, tried.stderr
    assert json.loads(tried.stdout)["stored"][0]["url"].startswith(f"{url}/files/images/")


def test_send_without_files_needs_a_mail_to_answer(served):
    folder, url = served
    result = send(folder, url)
    assert result.returncode == 2 and "nothing to send" in result.stderr


def test_the_reply_options_have_help_texts(capsys):
    with pytest.raises(SystemExit):
        cli.main(["send", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--text TEXT the message text, e.g. delete" in text
    assert "--in-reply-to MESSAGE_ID answer this mail" in text


VENV_PACKAGE = f"python{sys.version_info[0]}.{sys.version_info[1]}-venv"
# A Debian/Ubuntu machine, simulated on PATH: python3 without pythonX.Y-venv (no ensurepip: `-m venv`
# leaves a .venv without pip, prints Debian's hint and fails); dpkg, apt-get and sudo that only
# pretend. apt-get installing pythonX.Y-venv touches `venv-installed`, after which venvs get a pip.
FAKE_MACHINE = {
    "python3": f"""#!/bin/sh
here=$(dirname "$0")
if [ ! -e "$here/venv-installed" ]; then
    export PYTHONPATH="$here/no-ensurepip"
    if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
        {sys.executable} -m venv --without-pip "$3"
        echo "The virtual environment was not successfully created because ensurepip is not available."
        echo "    apt install {VENV_PACKAGE}"
        exit 1
    fi
fi
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    {sys.executable} -m venv --without-pip "$3" || exit 1
    printf '#!/bin/sh\\necho "$@" >> "%s/pip-calls"\\n' "$here" > "$3/bin/pip" && chmod +x "$3/bin/pip"
    exit 0
fi
exec {sys.executable} "$@"
""",
    "no-ensurepip/ensurepip.py": "raise ImportError('ensurepip is in Debian package pythonX.Y-venv')\n",
    "dpkg": f'#!/bin/sh\n[ "$2" != {VENV_PACKAGE} ] || [ -e "$(dirname "$0")/venv-installed" ]\n',
    "apt-get": f"""#!/bin/sh
echo "$@" >> "$(dirname "$0")/apt-calls"
case "$*" in *install*{VENV_PACKAGE}*) touch "$(dirname "$0")/venv-installed" ;; esac
""",
    "sudo": '#!/bin/sh\nexec "$@"\n',
}


@pytest.fixture
def debian_machine(tmp_path):
    """A copy of scripts/bootstrap and pyproject.toml, and the simulated machine's bin folder (on PATH first)."""
    project, machine = tmp_path / "project", tmp_path / "bin"
    (project / "scripts").mkdir(parents=True)
    for name in ("scripts/bootstrap", "pyproject.toml"):
        (project / name).write_bytes((ROOT / name).read_bytes())
    (project / "scripts" / "bootstrap").chmod(0o755)
    for name, text in FAKE_MACHINE.items():
        (machine / name).parent.mkdir(parents=True, exist_ok=True)
        (machine / name).write_text(text)
        (machine / name).chmod(0o755)

    def bootstrap():
        env = {**scrubbed_environ(), "PATH": f"{machine}:{os.environ['PATH']}"}
        env.pop("PYTHON", None)
        return subprocess.run(
            [project / "scripts" / "bootstrap"], cwd=project, env=env, capture_output=True, text=True, timeout=120
        )

    return project, machine, bootstrap


def test_bootstrap_installs_the_venv_package_debian_keeps_apart(debian_machine):
    project, machine, bootstrap = debian_machine

    result = bootstrap()

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"installing system packages: {VENV_PACKAGE}" in result.stdout
    assert (machine / "pip-calls").read_text() == "install -q -e .\n"


def test_bootstrap_run_again_repairs_a_venv_a_failed_first_run_left_without_pip(debian_machine):
    project, machine, bootstrap = debian_machine
    subprocess.run([machine / "python3", "-m", "venv", project / ".venv"], capture_output=True)  # the failed first run
    assert (project / ".venv" / "bin" / "python").exists() and not (project / ".venv" / "bin" / "pip").exists()
    (machine / "venv-installed").touch()  # then the user ran the apt install Debian's message names

    result = bootstrap()

    assert result.returncode == 0, result.stdout + result.stderr
    assert ".venv has no working pip: making it again" in result.stdout
    assert (machine / "pip-calls").read_text() == "install -q -e .\n"
    assert not (machine / "apt-calls").exists()

"""Reading the form: original file names cleaned for display, attachments spooled once."""

import pytest

from inbox.message import clean_filename


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\Desktop\\IMG_1.JPG", "C:\\Users\\me\\Desktop\\IMG_1.JPG"),  # a backslash is a character
        ("/abs/path/x.png", "x.png"),
        ("..", ""),
        ("bell\x07\x00\r\nname.jpg", "bellname.jpg"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),  # right-to-left override disguising an extension
        ("  .hidden.jpg. ", "hidden.jpg"),
        ("=?UTF-8?B?Y2Fmw6kuanBn?=", "café.jpg"),  # RFC 2047, passed through literally by werkzeug
        ("=?ISO-8859-1?Q?caf=E9.jpg?=", "café.jpg"),
        ("=?bogus?Q?x?=", "=?bogus?Q?x?="),
        ("=?utf-8?b?x?=", "=?utf-8?b?x?="),  # broken base64 in the word: kept as it came
        ("Cafe\u0301.jpg", "Café.jpg"),  # NFC
        ("写真 📷.heic", "写真 📷.heic"),
        ("a" * 400 + ".jpg", "a" * 255),
    ],
)
def test_clean_filename(raw, clean):
    assert clean_filename(raw) == clean

"""inbox/publish.py: what one mail may publish at most."""

from __future__ import annotations

import io
import os

from PIL import Image

from inbox.publish import MAX_IMAGES


def gif(number: int) -> bytes:
    """A small GIF of its own: each mail's photos differ."""
    image = io.BytesIO()
    Image.new("L", (8 + number % 64, 8 + number // 64), number % 256).save(image, "GIF")
    return image.getvalue()


def test_a_mail_of_more_photos_than_one_may_publish_stores_the_first_and_says_why_for_the_rest(deliver, settings):
    photos = [(f"{number}.gif", gif(number)) for number in range(MAX_IMAGES + 5)]
    response = deliver(*photos)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [item["filename"] for item in body["stored"]] == [name for name, _ in photos[:MAX_IMAGES]]
    assert [item["filename"] for item in body["rejected"]] == [name for name, _ in photos[MAX_IMAGES:]]
    assert {item["reason"] for item in body["rejected"]} == {
        f"more than {MAX_IMAGES} images in one mail: send those after the first {MAX_IMAGES} in another"
    }
    assert len(os.listdir(os.path.join(settings["STORAGE_PATH"], "images"))) == MAX_IMAGES

    the_rest = deliver(*photos[MAX_IMAGES:], message_id="<the-rest@example.com>").get_json()
    assert [item["filename"] for item in the_rest["stored"]] == [name for name, _ in photos[MAX_IMAGES:]]


def test_the_same_photo_attached_twice_is_published_once_and_the_copy_says_so(deliver, settings):
    # Both were listed as published, at one URL: "Your photos are published (2)" for one photo, the link twice,
    # and a `delete` confirmed "Taken down (2)".
    photo = gif(1)
    body = deliver(("IMG_1.gif", photo), ("IMG_1 copy.gif", photo), ("other.gif", gif(2))).get_json()

    assert [item["filename"] for item in body["stored"]] == ["IMG_1.gif", "other.gif"]
    (copy,) = body["rejected"]
    assert copy["filename"] == "IMG_1 copy.gif"
    assert copy["reason"] == "the same photo as IMG_1.gif: published once"
    assert len(os.listdir(os.path.join(settings["STORAGE_PATH"], "images"))) == 2


def test_a_copy_past_the_limit_is_called_a_copy_not_one_to_send_again(deliver):
    # It was told "more than 100 images in one mail: send those after the first 100 in another", and
    # sent again it would be published a second time, under a second link.
    photos = [(f"{number}.gif", gif(number)) for number in range(MAX_IMAGES)]
    body = deliver(*photos, ("0 copy.gif", gif(0))).get_json()

    assert len(body["stored"]) == MAX_IMAGES
    (copy,) = body["rejected"]
    assert copy["filename"] == "0 copy.gif" and copy["reason"] == "the same photo as 0.gif: published once"

"""The way back to a list after a bulk action keeps its filters, drops an earlier flash, and
never leaves the site."""

from core.bulk import back_url


def test_back_url_keeps_filters_replaces_the_flash_and_stays_on_the_site():
    assert back_url("/contacts?stage=lead&changed=4", "/contacts", changed=2) == \
        "/contacts?stage=lead&changed=2"
    assert back_url("/interactions?channel=call&changed=1", "/interactions") == \
        "/interactions?channel=call"
    assert back_url("https://evil.example/x", "/contacts", changed=1) == "/contacts?changed=1"
    assert back_url("//evil.example/x", "/contacts") == "/contacts"
    assert back_url(None, "/accounts") == "/accounts"

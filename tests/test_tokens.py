"""Unsubscribe tokens: deterministic, opaque, unforgeable, findable in pasted text."""

from __future__ import annotations

import base64
import re

import pytest

from nieuwsbrief.errors import ConfigError, NieuwsbriefError
from nieuwsbrief.unsubscribe.tokens import (
    MAX_LOCAL_PART,
    TOKEN_LENGTH,
    find_token,
    issue_tag,
    mailto_link,
    make_token,
    make_verp_token,
    recipient_id,
    unsubscribe_link,
    verify_token,
    verify_verp_token,
    verp_address,
)

SECRET = "test-secret-0123456789abcdef"
OTHER_SECRET = "another-secret-0123456789"
ADDRESS = "jan.jansen@gemeente.nl"


def test_token_is_deterministic_and_normalised() -> None:
    token = make_token(SECRET, ADDRESS)
    assert token == make_token(SECRET, ADDRESS)
    assert token == make_token(SECRET, "  Jan.Jansen@Gemeente.NL ")
    assert token != make_token(SECRET, "piet@gemeente.nl")
    assert token != make_token(OTHER_SECRET, ADDRESS)


def test_token_shape_fits_url_path_and_subject() -> None:
    token = make_token(SECRET, ADDRESS)
    assert len(token) == TOKEN_LENGTH
    assert 32 <= len(token) <= 40
    assert token.startswith("1")
    assert all(c.isalnum() or c in "-_" for c in token)


def test_token_reveals_no_address() -> None:
    token = make_token(SECRET, ADDRESS)
    lowered = token.lower()
    for fragment in ("jan", "gemeente", "@"):
        assert fragment not in lowered
    for variant in (ADDRESS, ADDRESS.upper()):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(variant.encode()).decode().rstrip("=")
            assert encoded[:8] not in token


def test_verify_returns_recipient_id() -> None:
    token = make_token(SECRET, ADDRESS)
    rid = recipient_id(SECRET, ADDRESS)
    assert verify_token(SECRET, token) == rid
    assert rid in token  # the id is the first part of the token body
    assert len(rid) == 16


def test_token_from_other_secret_is_rejected() -> None:
    assert verify_token(SECRET, make_token(OTHER_SECRET, ADDRESS)) is None


def test_forged_mac_is_rejected() -> None:
    token = make_token(SECRET, ADDRESS)
    last = "A" if token[-1] != "A" else "B"
    assert verify_token(SECRET, token[:-1] + last) is None
    # Someone else's id with my MAC.
    other = make_token(SECRET, "piet@gemeente.nl")
    assert verify_token(SECRET, other[:17] + token[17:]) is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "1",
        "1abc",
        "2" + "A" * 32,
        "1" + "A" * 31 + "=",
        "1" + "A" * 31 + "+",
        "1" + "A" * 33,
        "1" + "A" * 5000,
        "../../etc/passwd",
        "1" + "é" * 32,
        None,
        12345,
        b"1" + b"A" * 32,
    ],
)
def test_malformed_tokens_give_none(bad: object) -> None:
    assert verify_token(SECRET, bad) is None


def test_short_secret_is_refused() -> None:
    with pytest.raises(NieuwsbriefError, match="NIEUWSBRIEF_SECRET"):
        make_token("short", ADDRESS)


def test_find_token_in_reply_subject_and_mailto() -> None:
    token = make_token(SECRET, ADDRESS)
    assert find_token(f"Re: afmelden {token}") == token
    assert find_token(f"RE: AW: afmelden {token} (graag)") == token
    mailto = mailto_link("afmelden@bureau-kennis.net", token)
    assert find_token(mailto) == token
    assert find_token(f"afmelden%20{token}") == token
    assert find_token("Re: afmelden") is None
    assert find_token(f"afmelden x{token}") is None  # part of a longer word
    assert find_token(f"afmelden {token}x") is None


def test_links() -> None:
    token = make_token(SECRET, ADDRESS)
    url = unsubscribe_link("https://www.bureau-kennis.net/afmelden/{token}", token)
    assert url == f"https://www.bureau-kennis.net/afmelden/{token}"
    assert (
        mailto_link("afmelden@bureau-kennis.net", token)
        == f"mailto:afmelden@bureau-kennis.net?subject=afmelden%20{token}"
    )
    for template in ("https://www.bureau-kennis.net/afmelden/", "https://x.nl/{token}/{token}"):
        # The same rule as the setting (config.py): the placeholder exactly once.
        with pytest.raises(ConfigError, match="exactly once"):
            unsubscribe_link(template, token)


# -- VERP return-path tokens ------------------------------------------------------------------


def test_verp_token_names_recipient_and_issue_fits_a_local_part_and_reveals_no_address() -> None:
    token = make_verp_token(SECRET, "Jan.Jansen@Gemeente.nl", "2012-05")
    assert token == make_verp_token(SECRET, "jan.jansen@gemeente.nl", "2012-05")
    assert token != make_verp_token(SECRET, "jan.jansen@gemeente.nl", "2012-06")
    assert re.fullmatch(r"[a-z2-7]+", token[1:]) and "jan" not in token
    address = verp_address("bounces-nieuwsbrief@bureau-kennis.net", token)
    assert len(address.partition("@")[0]) <= MAX_LOCAL_PART
    # Some MTAs fold the local part to upper or lower case: the token still verifies.
    for seen in (token, token.upper()):
        assert verify_verp_token(SECRET, seen) == (
            recipient_id(SECRET, "jan.jansen@gemeente.nl"),
            issue_tag(SECRET, "2012-05"),
        )


def test_verp_token_altered_or_signed_with_another_secret_does_not_verify() -> None:
    token = make_verp_token(SECRET, "jan@gemeente.nl", "2012-05")
    flipped = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert verify_verp_token(SECRET, flipped) is None
    assert verify_verp_token("another-secret-0123456789", token) is None
    for junk in ("", "1", token + "a", "jan=gemeente.nl", None, 12):
        assert verify_verp_token(SECRET, junk) is None


def test_verp_address_refuses_a_bounce_local_part_too_long_for_the_token() -> None:
    token = make_verp_token(SECRET, "jan@gemeente.nl", "2012-05")
    with pytest.raises(NieuwsbriefError, match="at most 22 characters"):
        verp_address("x" * 23 + "@bureau-kennis.net", token)

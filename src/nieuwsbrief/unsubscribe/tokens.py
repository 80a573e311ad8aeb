"""Unsubscribe tokens: opaque, signed, deterministic identifiers of one recipient.

A token is ``VERSION + base64url(recipient_id_bytes + mac)`` without padding:

* ``recipient_id_bytes`` = HMAC-SHA256(id_key, normalised address)[:12]  (96 bits)
* ``mac``                = HMAC-SHA256(mac_key, VERSION + recipient_id_bytes)[:12]  (96 bits)

Both keys are derived from the secret with HMAC and a fixed label each (domain separation), so
the recipient id reveals nothing about the MAC key and vice versa. The token holds no address:
the address is found again through the ``recipients`` table (see suppression.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from functools import lru_cache
from urllib.parse import unquote

from nieuwsbrief.addresses import normalise_address, split_address
from nieuwsbrief.errors import ConfigError
from nieuwsbrief.i18n import _

VERSION = "1"
_ID_BYTES = 12
_MAC_BYTES = 12
_BODY_CHARS = 4 * (_ID_BYTES + _MAC_BYTES) // 3  # 24 bytes -> 32 base64 characters, no padding
TOKEN_LENGTH = len(VERSION) + _BODY_CHARS
MIN_SECRET_LENGTH = 16  # the one secret rule: config.py checks settings with it too

_B64 = "A-Za-z0-9_-"
# Strict: the version character, exactly 32 base64url characters, and no base64url character on
# either side, so a token is never cut out of a longer word.
TOKEN_RE = re.compile(rf"(?<![{_B64}]){VERSION}[{_B64}]{{{_BODY_CHARS}}}(?![{_B64}])")
_TOKEN_FULL_RE = re.compile(rf"{VERSION}[{_B64}]{{{_BODY_CHARS}}}")

_ID_LABEL = b"nieuwsbrief/unsubscribe/recipient-id/v1"
_MAC_LABEL = b"nieuwsbrief/unsubscribe/mac/v1"


@lru_cache(maxsize=8)
def _keys(secret: str) -> tuple[bytes, bytes]:
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            _(
                "the unsubscribe secret is shorter than {length} characters; "
                "set NIEUWSBRIEF_SECRET to a long random value"
            ).format(length=MIN_SECRET_LENGTH)
        )
    master = secret.encode("utf-8")
    id_key = hmac.new(master, _ID_LABEL, hashlib.sha256).digest()
    mac_key = hmac.new(master, _MAC_LABEL, hashlib.sha256).digest()
    return id_key, mac_key


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _id_bytes(secret: str, address: str) -> bytes:
    id_key, _ = _keys(secret)
    digest = hmac.digest(id_key, normalise_address(address).encode("utf-8"), "sha256")
    return digest[:_ID_BYTES]


def _mac(secret: str, id_bytes: bytes) -> bytes:
    _, mac_key = _keys(secret)
    message = VERSION.encode("ascii") + id_bytes
    return hmac.digest(mac_key, message, "sha256")[:_MAC_BYTES]


def recipient_id(secret: str, address: str) -> str:
    """Return the opaque id (16 base64url characters) that stands for `address`."""
    return _b64encode(_id_bytes(secret, address))


def make_token(secret: str, address: str) -> str:
    """Return the unsubscribe token of `address`; the same inputs always give the same token."""
    id_bytes = _id_bytes(secret, address)
    return VERSION + _b64encode(id_bytes + _mac(secret, id_bytes))


def verify_token(secret: str, token: object) -> str | None:
    """Return the recipient id in `token` if its MAC is valid, else None (never raises on input)."""
    if not isinstance(token, str) or not _TOKEN_FULL_RE.fullmatch(token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token[len(VERSION) :])
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _ID_BYTES + _MAC_BYTES:
        return None
    id_bytes, mac = raw[:_ID_BYTES], raw[_ID_BYTES:]
    if not hmac.compare_digest(mac, _mac(secret, id_bytes)):
        return None
    return _b64encode(id_bytes)


def find_token(text: str) -> str | None:
    """Return the first token-shaped word in pasted text (a subject, a mailto URL), else None."""
    if not isinstance(text, str):
        return None
    # The mailto subject arrives percent-encoded ("afmelden%20TOKEN") when a URL is pasted;
    # "%20" would otherwise glue "20" to the front of the token.
    for candidate in (text, unquote(text)):
        match = TOKEN_RE.search(candidate)
        if match:
            return match.group(0)
    return None


def has_one_token_placeholder(url_template: str) -> bool:
    """Tell whether an unsubscribe URL template holds the `{token}` placeholder exactly once."""
    return url_template.count("{token}") == 1


def require_token_placeholder(url_template: str) -> None:
    """Refuse an unsubscribe URL template without exactly one `{token}` placeholder."""
    if not has_one_token_placeholder(url_template):
        raise ConfigError(
            _(
                "the unsubscribe URL {url} must contain the {placeholder} placeholder exactly "
                "once; set NIEUWSBRIEF_UNSUBSCRIBE_URL to e.g. {example}"
            ).format(
                url=repr(url_template),
                placeholder="'{token}'",
                example="https://www.bureau-kennis.net/afmelden/{token}",
            )
        )


def unsubscribe_link(url_template: str, token: str) -> str:
    """Return the HTTPS unsubscribe URL: `url_template` with `{token}` replaced by `token`."""
    require_token_placeholder(url_template)
    return url_template.replace("{token}", token)


def mailto_link(address: str, token: str) -> str:
    """Return the mailto URI for List-Unsubscribe: `mailto:ADDRESS?subject=afmelden%20TOKEN`."""
    return f"mailto:{address}?subject=afmelden%20{token}"


# -- VERP return-path tokens --------------------------------------------------------------------
#
# The envelope sender of each message is `local+<token>@domain` (VERP), so a bounce names the
# recipient and the issue without quoting anything. The token is
# ``VERP_VERSION + base32_lower(recipient_id_bytes + issue_tag + mac)``:
#
# * ``recipient_id_bytes`` = the 96-bit recipient id of the unsubscribe tokens (found again
#   through the suppression list's ``recipients`` table: the token holds no address);
# * ``issue_tag``          = HMAC-SHA256(issue_key, issue id)[:4] (found among the ledger's issues);
# * ``mac``                = HMAC-SHA256(verp_key, VERP_VERSION + id + tag)[:9] (72 bits).
#
# Lower-case base32 survives MTAs that fold the case of local parts; 25 bytes are exactly 40
# characters, so the token is 41 and leaves 22 octets for the bounce address's own local part.

VERP_VERSION = "1"
_ISSUE_TAG_BYTES = 4
_VERP_MAC_BYTES = 9
_VERP_BODY_CHARS = 8 * (_ID_BYTES + _ISSUE_TAG_BYTES + _VERP_MAC_BYTES) // 5  # 40
VERP_TOKEN_LENGTH = len(VERP_VERSION) + _VERP_BODY_CHARS
MAX_LOCAL_PART = 64  # RFC 5321 4.5.3.1.1
VERP_LOCAL_MAX = MAX_LOCAL_PART - VERP_TOKEN_LENGTH - 1  # octets left for local in local+<token>
VERP_TOKEN_RE = re.compile(rf"{VERP_VERSION}[a-z2-7]{{{_VERP_BODY_CHARS}}}", re.IGNORECASE)

_ISSUE_LABEL = b"nieuwsbrief/verp/issue-tag/v1"
_VERP_MAC_LABEL = b"nieuwsbrief/verp/mac/v1"


@lru_cache(maxsize=8)
def _verp_keys(secret: str) -> tuple[bytes, bytes]:
    _keys(secret)  # the same length rule as the unsubscribe tokens
    master = secret.encode("utf-8")
    return (
        hmac.new(master, _ISSUE_LABEL, hashlib.sha256).digest(),
        hmac.new(master, _VERP_MAC_LABEL, hashlib.sha256).digest(),
    )


def issue_tag(secret: str, issue_id: str) -> str:
    """Return the short opaque tag (hex) that stands for `issue_id` inside a VERP token."""
    issue_key, _ = _verp_keys(secret)
    return hmac.digest(issue_key, issue_id.encode("utf-8"), "sha256")[:_ISSUE_TAG_BYTES].hex()


def _verp_mac(secret: str, body: bytes) -> bytes:
    _, mac_key = _verp_keys(secret)
    return hmac.digest(mac_key, VERP_VERSION.encode("ascii") + body, "sha256")[:_VERP_MAC_BYTES]


def make_verp_token(secret: str, address: str, issue_id: str) -> str:
    """Return the signed return-path token for one recipient of one issue (deterministic)."""
    body = _id_bytes(secret, address) + bytes.fromhex(issue_tag(secret, issue_id))
    raw = body + _verp_mac(secret, body)
    return VERP_VERSION + base64.b32encode(raw).decode("ascii").lower()


def verp_local_fits(local: str) -> bool:
    """Tell whether `local`+<VERP token> fits the 64 octets of a local part (RFC 5321)."""
    return len(local.encode("utf-8")) <= VERP_LOCAL_MAX


def verp_address(bounce_address: str, token: str) -> str:
    """Return `local+token@domain` for the bounce address `local@domain`; check the length."""
    local, domain = split_address(bounce_address)
    if not local:
        raise ConfigError(
            _("the bounce address {bounce_address!r} has no local part").format(
                bounce_address=bounce_address
            )
        )
    if not verp_local_fits(local):
        raise ConfigError(
            _(
                "the bounce address {bounce_address!r} is too long for VERP: "
                "its part before '@' may have at most {MAX_LOCAL_PART} "
                "characters"
            ).format(bounce_address=bounce_address, MAX_LOCAL_PART=VERP_LOCAL_MAX)
        )
    return f"{local}+{token}@{domain}"


def verify_verp_token(secret: str, token: object) -> tuple[str, str] | None:
    """Return (recipient id, issue tag) if `token` is a VERP token with a valid MAC, else None."""
    if not isinstance(token, str) or not VERP_TOKEN_RE.fullmatch(token):
        return None
    try:
        raw = base64.b32decode(token[len(VERP_VERSION) :].upper())
    except (binascii.Error, ValueError):
        return None
    body, mac = raw[:-_VERP_MAC_BYTES], raw[-_VERP_MAC_BYTES:]
    if len(body) != _ID_BYTES + _ISSUE_TAG_BYTES or not hmac.compare_digest(
        mac, _verp_mac(secret, body)
    ):
        return None
    return _b64encode(body[:_ID_BYTES]), body[_ID_BYTES:].hex()

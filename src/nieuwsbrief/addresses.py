"""E-mail addresses: the one normal form we compare them in, and the form SMTP needs.

* `normalise_address` is the key of an address everywhere an address is compared: suppression
  list, de-duplication of a list, ledger, unsubscribe tokens. NFC, lower-cased, and the domain in
  Unicode whether it was written in Unicode or in punycode, so ``a@xn--bcher-kva.example`` and
  ``A@Bücher.example`` are one person.
* `smtp_address` is the address as it goes into the envelope and the ``To:`` header: the domain
  in its ASCII (IDNA2008, punycode) form, the local part untouched.
* `needs_smtputf8` says whether an address can only be sent with the SMTPUTF8 extension
  (RFC 6531): its local part is not ASCII, and no encoding of it exists for older servers.

The domain conversions use the `idna` package (IDNA2008 with UTS #46 mapping), which
email-validator depends on as well.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

import idna

from nieuwsbrief.errors import AddressError
from nieuwsbrief.i18n import N_, _

# email-validator explains in English; its common reasons are msgids of our catalog, so they
# read the same in English and are translated for Dutch. Others stay as the library wrote them.
_INVALID_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (r"An email address must have an @-sign\.", N_("An email address must have an @-sign")),
        (
            r"There must be something before the @-sign\.",
            N_("There must be something before the @-sign"),
        ),
        (
            r"There must be something after the @-sign\.",
            N_("There must be something after the @-sign"),
        ),
        (
            r"The part after the @-sign is not valid\. It should have a period\.",
            N_("The part after the @-sign is not valid. It should have a period"),
        ),
        (
            r"The part after the @-sign is not valid\. It is not within a valid top-level domain\.",
            N_("The part after the @-sign is not valid. It is not within a valid top-level domain"),
        ),
        (
            r"An email address cannot have two periods in a row\.",
            N_("An email address cannot have two periods in a row"),
        ),
        (
            r"The email address contains invalid characters before the @-sign: (?P<chars>.+)\.",
            N_("The email address contains invalid characters before the @-sign: {chars}"),
        ),
        (
            r"The part after the @-sign contains invalid characters: (?P<chars>.+)\.",
            N_("The part after the @-sign contains invalid characters: {chars}"),
        ),
        (
            r"There can't be anything after the email address\.",
            N_("There can't be anything after the email address"),
        ),
    )
)


def invalid_reason(exc: Exception) -> str:
    """Return why email-validator refused an address (no final period), translated if known."""
    text = str(exc).strip()
    for pattern, template in _INVALID_REASONS:
        match = pattern.fullmatch(text)
        if match:
            return _(template).format(**match.groupdict())
    return text.rstrip(".")


def split_address(address: str) -> tuple[str, str]:
    """Return (local part, domain) of an address; the split is at the last '@'."""
    local, _, domain = address.rpartition("@")
    return local, domain


def _ascii_domain(domain: str) -> str:
    """Return the IDNA2008 ASCII form of a domain, lower-cased; raise idna.IDNAError if none."""
    if domain.isascii() and "xn--" not in domain.lower():
        return domain.lower()
    return idna.encode(domain.rstrip("."), uts46=True).decode("ascii")


def _unicode_domain(domain: str) -> str:
    """Return a domain in lower-case Unicode (punycode labels decoded); never raises."""
    lowered = unicodedata.normalize("NFC", domain).lower()
    if lowered.isascii() and "xn--" not in lowered:
        return lowered
    try:
        return idna.decode(_ascii_domain(domain))
    except (idna.IDNAError, UnicodeError):
        # Not a valid IDNA name: still compare it in one form rather than refuse to compare.
        return lowered


def normalise_address(address: str) -> str:
    """Return the form in which two addresses are compared: NFC, lower case, Unicode domain."""
    address = address.strip()
    if address.isascii() and "xn--" not in address.lower():
        return address.lower()  # the common case, fast: 100,000 rows are compared per send
    local, domain = split_address(address)
    local = unicodedata.normalize("NFC", local).lower()
    if not domain:
        return local
    return f"{local}@{_unicode_domain(domain)}"


def smtp_address(address: str) -> str:
    """Return an address as SMTP and the `To:` header need it: the domain in ASCII (punycode)."""
    local, domain = split_address(address)
    if domain.isascii():
        return address
    try:
        return f"{local}@{_ascii_domain(domain)}"
    except (idna.IDNAError, UnicodeError) as exc:
        raise AddressError(
            _(
                "{address}: the domain {domain} is not a valid international domain name "
                "({reason}); correct the address in the list"
            ).format(address=address, domain=repr(domain), reason=exc)
        ) from None


def needs_smtputf8(address: str) -> bool:
    """Return whether the address can only be sent with SMTPUTF8 (a non-ASCII local part)."""
    return not split_address(address)[0].isascii()


def is_loopback_host(host: str) -> bool:
    """Tell whether a host name or IP literal names this machine (RFC 6761: *.localhost too)."""
    name = host.strip("[]").lower().rstrip(".")
    if name in ("localhost", "localhost.localdomain") or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False

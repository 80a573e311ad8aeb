"""Tests for subscriber list loading: encodings, delimiters, validation, duplicates, reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import read_list
from nieuwsbrief.errors import SubscriberListError
from nieuwsbrief.subscribers import (
    REPORT_LIMIT,
    DuplicateRow,
    RejectedRow,
    format_report,
    normalise_key,
    scan_subscribers,
)


def write(tmp_path: Path, data: bytes, name: str = "leden.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_semicolon_cp1252_from_dutch_excel(tmp_path: Path) -> None:
    data = (
        "Naam;E-mailadres;Organisatie\r\n"
        "Café de Zoë;cafe@voorbeeld.nl;Gemeente Zoë\r\n"
        "Jan Jansen;jan@voorbeeld.nl;Café BV\r\n"
    ).encode("cp1252")
    lst = read_list(write(tmp_path, data))

    assert lst.encoding == "cp1252"
    assert lst.delimiter == ";"
    assert lst.columns == ("naam", "e_mailadres", "organisatie")
    assert [(s.email, s.name, s.line) for s in lst.subscribers] == [
        ("cafe@voorbeeld.nl", "Café de Zoë", 2),
        ("jan@voorbeeld.nl", "Jan Jansen", 3),
    ]
    assert dict(lst.subscribers[1].fields) == {
        "naam": "Jan Jansen",
        "e_mailadres": "jan@voorbeeld.nl",
        "organisatie": "Café BV",
    }
    assert lst.invalid == ()
    assert lst.duplicates == ()


def test_comma_utf8_with_bom(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbfemail,name\r\nzoe@voorbeeld.nl,Zo\xc3\xab\r\n"
    lst = read_list(write(tmp_path, data))

    assert lst.encoding == "utf-8-sig"
    assert lst.delimiter == ","
    # The BOM must not end up in the first header ("\ufeffemail" would hide the e-mail column).
    assert lst.columns == ("email", "name")
    assert [(s.email, s.name) for s in lst.subscribers] == [("zoe@voorbeeld.nl", "Zoë")]


def test_plain_utf8_without_bom(tmp_path: Path) -> None:
    data = "email;naam\nzoe@voorbeeld.nl;Zoë\n".encode()
    lst = read_list(write(tmp_path, data))

    assert lst.encoding == "utf-8"
    assert lst.subscribers[0].name == "Zoë"


def test_tab_separated(tmp_path: Path) -> None:
    data = b"E-mail\tVoornaam\tPlaats\nanna@voorbeeld.nl\tAnna\tDen Haag, Centrum\n"
    lst = read_list(write(tmp_path, data))

    assert lst.delimiter == "\t"
    assert lst.subscribers[0].fields["plaats"] == "Den Haag, Centrum"
    assert lst.subscribers[0].name == "Anna"


def test_old_mac_line_endings(tmp_path: Path) -> None:
    lst = read_list(write(tmp_path, b"naam;email\rA;a@voorbeeld.nl\rB;b@voorbeeld.nl\r"))

    assert [(s.email, s.line) for s in lst.subscribers] == [
        ("a@voorbeeld.nl", 2),
        ("b@voorbeeld.nl", 3),
    ]


def test_header_only_gives_empty_list(tmp_path: Path) -> None:
    lst = read_list(write(tmp_path, b"naam;email\r\n"))

    assert lst.subscribers == ()
    assert lst.invalid == ()
    assert lst.columns == ("naam", "email")
    assert lst.delimiter == ";"


def test_excel_sep_hint_line(tmp_path: Path) -> None:
    lst = read_list(write(tmp_path, b"sep=;\r\nemail;naam\r\nx@voorbeeld.nl;X\r\n"))

    assert lst.delimiter == ";"
    assert lst.subscribers[0].line == 3


def test_duplicates_differing_in_case_and_whitespace(tmp_path: Path) -> None:
    data = (
        b"email;naam\r\n"
        b"Jan@Voorbeeld.nl;Jan\r\n"
        b"piet@voorbeeld.nl;Piet\r\n"
        b"  jan@voorbeeld.NL ;Jan again\r\n"
        b"JAN@VOORBEELD.NL;Jan third\r\n"
    )
    lst = read_list(write(tmp_path, data))

    # First occurrence wins; the validator lowercases the domain but keeps the local part.
    assert [(s.email, s.name) for s in lst.subscribers] == [
        ("Jan@voorbeeld.nl", "Jan"),
        ("piet@voorbeeld.nl", "Piet"),
    ]
    assert lst.duplicates == (
        DuplicateRow(line=4, email="jan@voorbeeld.nl", first_line=2),
        DuplicateRow(line=5, email="JAN@voorbeeld.nl", first_line=2),
    )


def test_invalid_rows_keep_physical_line_numbers(tmp_path: Path) -> None:
    data = (
        b"naam;email;opmerking\r\n"  # 1
        b'Ann;ann@voorbeeld.nl;"eerste regel\r\n'  # 2
        b'tweede; regel"\r\n'  # 3
        b"Bob;bob@voorbeeld;\r\n"  # 4
        b";;\r\n"  # 5: blank in Excel, skipped silently
        b"Cor;;geen adres\r\n"  # 6
        b"Dirk;dirk@@voorbeeld.nl;\r\n"  # 7
        b"Eva;eva@voorbeeld.nl;\r\n"  # 8
    )
    lst = read_list(write(tmp_path, data))

    assert [(s.email, s.line) for s in lst.subscribers] == [("eva@voorbeeld.nl", 8)]
    # Any value with a line break is refused: merge fields can end up in headers.
    assert [(r.line, r.value) for r in lst.invalid] == [
        (2, "eerste regel\r\ntweede; regel"),
        (4, "bob@voorbeeld"),
        (6, ""),
        (7, "dirk@@voorbeeld.nl"),
    ]
    assert lst.invalid[0].reason == "opmerking contains a line break"
    assert lst.invalid[1].reason.startswith("not a valid e-mail address: The part after the @-sign")
    assert lst.invalid[2].reason == "no e-mail address"


def test_header_case_variants(tmp_path: Path) -> None:
    headers = ("E-mailadres", "EMAIL", " Email Address ", "e-mail", "MAIL", "Mailadres")
    for header in (*headers, "EmailAddress", "E-mailaddress"):
        lst = read_list(write(tmp_path, f"Naam;{header}\nAnn;ann@voorbeeld.nl\n".encode()))
        assert lst.subscribers[0].email == "ann@voorbeeld.nl", header
        assert lst.subscribers[0].name == "Ann", header


def test_name_built_from_voornaam_tussenvoegsel_achternaam(tmp_path: Path) -> None:
    data = (
        b"Voornaam;Tussenvoegsel;Achternaam;Email\r\n"
        b"Jan;van der;Berg;jan@voorbeeld.nl\r\n"
        b"Els;;Smit;els@voorbeeld.nl\r\n"
        b";;;anoniem@voorbeeld.nl\r\n"
    )
    lst = read_list(write(tmp_path, data))

    assert [s.name for s in lst.subscribers] == ["Jan van der Berg", "Els Smit", ""]
    assert lst.subscribers[0].fields["tussenvoegsel"] == "van der"


def test_name_column_wins_over_parts(tmp_path: Path) -> None:
    data = b"Voornaam;Volledige naam;email\r\nJan;Jan  van der Berg;jan@voorbeeld.nl\r\n"
    lst = read_list(write(tmp_path, data))

    assert lst.subscribers[0].name == "Jan van der Berg"


def test_header_injection_in_name_is_rejected(tmp_path: Path) -> None:
    data = (
        b"naam,email\r\n"
        b'"Jan\r\nBcc: x@evil.nl",jan@voorbeeld.nl\r\n'  # lines 2-3
        b"Piet,piet@voorbeeld.nl\r\n"  # line 4
    )
    lst = read_list(write(tmp_path, data))

    assert lst.invalid == (
        RejectedRow(line=2, value="Jan\r\nBcc: x@evil.nl", reason="naam contains a line break"),
    )
    assert [(s.email, s.line) for s in lst.subscribers] == [("piet@voorbeeld.nl", 4)]


def test_nul_and_control_characters_are_rejected(tmp_path: Path) -> None:
    data = (
        b"email;naam;org\r\na@voorbeeld.nl;A\x00;x\r\nb@voorbeeld.nl;B;\x1bx\r\n"
        b"c@voorbeeld.nl;C;\xc2\x9bx\r\n"  # U+009B, the C1 form of ESC [
    )
    lst = read_list(write(tmp_path, data))

    assert [(r.line, r.reason) for r in lst.invalid] == [
        (2, "naam contains a NUL character (U+0000)"),
        (3, "org contains an ESC character (U+001B)"),
        (4, "org contains a control character (U+009B)"),
    ]
    assert lst.subscribers == ()


def test_missing_email_column_names_file_headers_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, b"Naam;Telefoon\r\nJan;0612345678\r\n")
    with pytest.raises(SubscriberListError) as info:
        read_list(path)

    message = str(info.value)
    assert f"{path}:1: no e-mail column" in message
    assert "'Naam', 'Telefoon'" in message
    assert "Add a column named e-mail or email" in message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "the file is empty"),
        (b" \r\n\r\n", "the file is empty"),
        (b"PK\x03\x04\x14\x00\x00\x00", "an Excel workbook (.xlsx)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "an Excel 97-2003 workbook (.xls)"),
        (b"\x7fELF\x02\x01\x01" + bytes(100), "not a text file"),
        (b"\xff\xfee\x00m\x00", "saved as UTF-16"),
        (b"email\r\n\x81\x8d@x.nl\r\n", "not text in UTF-8 or Windows-1252"),
    ],
)
def test_unreadable_files_raise_subscriber_list_error(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    path = write(tmp_path, data)
    with pytest.raises(SubscriberListError) as info:
        read_list(path)

    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(SubscriberListError, match="no such file"):
        read_list(tmp_path / "nope.csv")
    with pytest.raises(SubscriberListError, match="is a folder"):
        read_list(tmp_path)


def test_merge_field_keys(tmp_path: Path) -> None:
    data = (
        "E-mailadres;Organisatie;Functie / Rol;Categorië;Postcode (4);;\n"
        "x@voorbeeld.nl;BK;Dir;A;2511;;\n"
    )
    lst = read_list(write(tmp_path, data.encode()))

    assert lst.columns == (
        "e_mailadres",
        "organisatie",
        "functie_rol",
        "categorie",
        "postcode_4",
        "column_6",
        "column_7",
    )
    assert lst.subscribers[0].fields["functie_rol"] == "Dir"
    assert normalise_key("\ufeff E-mail Address ") == "e_mail_address"


def test_headers_with_same_key_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, b"email;E-mail adres;e mail adres\r\n")
    with pytest.raises(SubscriberListError) as info:
        read_list(path)

    assert str(info.value) == (
        f"{path}:1: columns 'E-mail adres' and 'e mail adres' both become merge field "
        "'e_mail_adres'; rename one of them"
    )


def test_short_rows_get_empty_fields(tmp_path: Path) -> None:
    lst = read_list(write(tmp_path, b"email;naam;org\r\nx@voorbeeld.nl\r\n"))

    assert dict(lst.subscribers[0].fields) == {"email": "x@voorbeeld.nl", "naam": "", "org": ""}


def test_sniffer_not_fooled_by_commas_in_semicolon_file(tmp_path: Path) -> None:
    data = b"naam;email;adres\r\n" + b"".join(
        b"Jan %d;j%d@voorbeeld.nl;Straat 1, 2511 AB, Den Haag\r\n" % (i, i) for i in range(5)
    )
    lst = read_list(write(tmp_path, data))

    assert lst.delimiter == ";"
    assert len(lst.subscribers) == 5


def test_format_report(tmp_path: Path) -> None:
    data = b"email;naam\r\na@voorbeeld.nl;A\r\nA@voorbeeld.nl;A2\r\nkapot;K\r\n;Leeg\r\n"
    path = write(tmp_path, data)
    report = format_report(scan_subscribers(path), suppressed=2)

    assert report.splitlines() == [
        f"{path}: utf-8, semicolon (;)-separated",
        "  1 valid recipient",
        "  merge fields: email, naam",
        "  2 invalid rows (skipped):",
        f"    {path}:4: not a valid e-mail address: An email address must have an @-sign"
        " (value 'kapot')",
        f"    {path}:5: no e-mail address",
        "  1 duplicate (skipped):",
        f"    {path}:3: duplicate of line 2 (A@voorbeeld.nl)",
        "  2 suppressed (will be skipped)",
    ]


def test_format_report_is_compact_with_many_problems(tmp_path: Path) -> None:
    rows = b"".join(b"fout%d;X\r\n" % i for i in range(50))
    rows += b"".join(b"dup@voorbeeld.nl;D\r\n" for _ in range(30))
    scan = scan_subscribers(write(tmp_path, b"email;naam\r\n" + rows))
    report = format_report(scan).splitlines()

    assert "  50 invalid rows (skipped):" in report
    assert "    ... and 30 more" in report  # 50 invalid, 20 shown
    assert "  29 duplicates (skipped):" in report
    assert "    ... and 9 more" in report  # 29 duplicates, 20 shown
    assert len(report) < 50
    # What the report shows is all that is kept of the rows, however many there are.
    assert (len(scan.first_invalid), len(scan.first_duplicates)) == (REPORT_LIMIT, REPORT_LIMIT)
    assert [d.first_line for d in scan.first_duplicates] == [52] * REPORT_LIMIT


def test_hundred_thousand_rows_load_with_their_line_numbers(tmp_path: Path) -> None:
    # How long it takes is measured in benchmarks/bench_test_timings.py, not asserted here.
    rows = b"".join(
        b"Lid %d;lid%d@voorbeeld.nl;Gemeente %d\r\n" % (i, i, i % 300) for i in range(100_000)
    )
    path = write(tmp_path, b"Naam;E-mail;Organisatie\r\n" + rows)

    lst = read_list(path)

    assert len(lst.subscribers) == 100_000
    assert lst.subscribers[-1].line == 100_001
    assert lst.subscribers[-1].email == "lid99999@voorbeeld.nl"

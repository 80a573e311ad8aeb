"""Staff request files for `nieuwsbrief unsubscribe --from-file`: plain lines or a CSV export."""

from __future__ import annotations

from pathlib import Path

import pytest

from nieuwsbrief.errors import NieuwsbriefError
from nieuwsbrief.unsubscribe.staff import read_request_file


def test_request_file_plain_lines(tmp_path: Path) -> None:
    path = tmp_path / "afmeldingen.txt"
    path.write_text(
        "# afmeldingen van de telefoon\n\njan@gemeente.nl\n  piet@gemeente.nl  \n"
        "Re: afmelden 1AAAA\n",
        encoding="utf-8",
    )
    assert read_request_file(path) == [
        "jan@gemeente.nl",
        "piet@gemeente.nl",
        "Re: afmelden 1AAAA",
    ]


def test_request_file_csv_semicolon_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    text = 'Naam;E-mailadres;Organisatie\nZoë Jansen;zoe@gemeente.nl;"Gemeente; Breda"\n'
    text += ";;\nJan;jan@gemeente.nl;X\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert read_request_file(path) == ["zoe@gemeente.nl", "jan@gemeente.nl"]


def test_request_file_csv_cp1252_comma_and_tab(tmp_path: Path) -> None:
    comma = tmp_path / "a.csv"
    comma.write_bytes("naam,email\nCafé Zoë,zoe@gemeente.nl\n".encode("cp1252"))
    assert read_request_file(comma) == ["zoe@gemeente.nl"]
    tab = tmp_path / "b.tsv"
    tab.write_text("E-mail\tNaam\njan@gemeente.nl\tJan\n", encoding="utf-8")
    assert read_request_file(tab) == ["jan@gemeente.nl"]
    # The request file and the subscriber list know the same e-mail columns (one table).
    crm = tmp_path / "c.csv"
    crm.write_text("Mailadres;Naam\npiet@gemeente.nl;Piet\n", encoding="utf-8")
    assert read_request_file(crm) == ["piet@gemeente.nl"]


def test_request_file_missing(tmp_path: Path) -> None:
    with pytest.raises(NieuwsbriefError, match=r"weg\.txt"):
        read_request_file(tmp_path / "weg.txt")


def test_request_file_comment_before_the_csv_header(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("# export van de CRM\nnaam;e-mail\nJan;jan@gemeente.nl\n", encoding="utf-8")
    assert read_request_file(path) == ["jan@gemeente.nl"]


def test_request_file_cell_over_the_limit_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        'naam;e-mail\nJan;jan@gemeente.nl\n"' + "x" * 1_100_000 + '";piet@gemeente.nl\n',
        encoding="utf-8",
    )
    with pytest.raises(NieuwsbriefError) as info:
        read_request_file(path)
    assert str(info.value).startswith(f"{path}:3: a cell in the row starting here is longer")

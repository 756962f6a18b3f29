"""The benchmark's table (bench/harness.py print_table) says what a reader needs to judge each row."""

from __future__ import annotations

import pytest

from bench.harness import Row, print_table
from bench.ingest_read import _below_target


def test_a_ratio_just_under_its_target_does_not_print_as_the_target(capsys: pytest.CaptureFixture[str]) -> None:
    print_table([Row("read", "370 req/s", "930 req/s", 370 / 930, ">= 40%", False)])
    line = capsys.readouterr().out.splitlines()[2]
    assert "39.8%" in line and "40.0%" not in line and line.rstrip().endswith("NO")


def test_notes_are_printed_below_the_table_for_their_rows(capsys: pytest.CaptureFixture[str]) -> None:
    print_table([Row("ingest, c16", "500/s", "900 tx/s raw", 0.55, ">= 1,000/s", False, note=_below_target(900)),
                 Row("read", "400 req/s", "900 req/s", 0.44, ">= 40%", True)])
    out = capsys.readouterr().out
    notes = out.split("Notes:\n", 1)[1].splitlines()
    assert notes[0].startswith("  ingest, c16: the raw ceiling measured here (900 tx/s") and len(notes) == 1


def test_only_a_ceiling_under_the_target_gets_a_note() -> None:
    assert _below_target(1000) == "" and _below_target(2500) == ""
    assert "999 tx/s" in _below_target(999)

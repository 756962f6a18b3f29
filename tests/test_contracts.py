"""The artefacts others rely on: the printed SDL, the API contract, and the layering of the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from api.graphql.schema import sdl

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_CHECK = ROOT.parent / "shared" / "tools" / "contract_check.py"


def test_printed_schema_is_up_to_date() -> None:
    committed = (ROOT / "schema" / "schema.graphql").read_text()
    assert committed == sdl(), (
        "schema/schema.graphql differs from the served schema; regenerate it with "
        "`.venv/bin/python -c 'from api.graphql.schema import sdl; print(sdl(), end=\"\")' > schema/schema.graphql`"
    )


def test_no_breaking_change_against_the_contract() -> None:
    """The whole contract is built now, so the check runs without --partial: nothing may be missing."""
    assert CONTRACT_CHECK.exists(), f"the contract checker is expected at {CONTRACT_CHECK}"
    result = subprocess.run(
        [sys.executable, str(CONTRACT_CHECK), str(ROOT / "schema" / "schema.graphql")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 breaking changes" in result.stdout


def test_layers_hold() -> None:
    """workers never import the GraphQL layer; the domain does no I/O; data flows one way."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    """Signing vectors shared with the conformance suite (fixtures/vectors.yaml)."""
    with (FIXTURES / "vectors.yaml").open(encoding="utf-8") as file:
        data: dict[str, Any] = yaml.safe_load(file)
    return data

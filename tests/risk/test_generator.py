"""The trace generator writes what ``sessionward risk eval`` reads, the same for the same seed,
on real networks, with every attack class it documents."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")

from sessionward.core.context import RequestContext
from sessionward.risk import Enricher
from sessionward.risk.traces import read_traces

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "risk_traces.py"


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("risk_traces", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["risk_traces"] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("variant", ["shop", "saas"])
def test_generated_traces_read_back_and_repeat(generator: ModuleType, variant: str) -> None:
    def lines(seed: int) -> list[str]:
        made = generator.generate(300, seed, generator.VARIANTS[variant])
        return [json.dumps(s) for s in made]

    first = lines(5)
    assert first == lines(5)
    assert first != lines(6)
    traces = read_traces(first)
    assert len(traces) >= 300
    attacked = [t for t in traces if t.attacked]
    assert {t.attack for t in attacked} == set(generator.VARIANTS[variant].attacks)
    assert all(t.attack is None for t in traces if not t.attacked)


def test_addresses_belong_to_the_networks_they_claim(generator: ModuleType) -> None:
    """Each access network in the table geolocates to its own country and owner."""
    world = generator.World()
    enricher = Enricher()
    rng = random.Random(1)
    for (country, role), networks in sorted(world.by.items()):
        if country == "*":
            continue
        for net in networks:
            address = generator._prefix_address(rng, net)
            found = enricher.signals(RequestContext(ip=address)).network
            assert (found.asn, found.country) == (net.asn, net.country), (role, address)

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
    sys.path.insert(0, str(SCRIPT.parent))  # its parameters are a sibling module
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


CHECK = SCRIPT.with_name("risk_traces_check.py")


@pytest.fixture(scope="module")
def check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("risk_traces_check", CHECK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["risk_traces_check"] = module
    spec.loader.exec_module(module)
    return module


def test_the_check_generator_writes_readable_traces_on_real_networks(check: ModuleType) -> None:
    made = [json.dumps(s) for s in check.generate(200, 3, samples=40_000)]
    assert made == [json.dumps(s) for s in check.generate(200, 3, samples=40_000)]
    traces = read_traces(made)
    assert len(traces) >= 200
    attacked = [t for t in traces if t.attacked]
    assert attacked
    assert all(t.attack for t in attacked)
    assert not any(t.attack for t in traces if not t.attacked)
    enricher = Enricher()
    owners = [enricher.signals(e.context).network for t in traces[:50] for e in t.events]
    assert sum(1 for n in owners if n.asn and n.country) >= 0.95 * len(owners)

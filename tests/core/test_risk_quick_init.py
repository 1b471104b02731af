"""The engine's values are built by ``quick_init``'s ``__init__``: same answers as the
dataclass's own."""

from __future__ import annotations

import dataclasses

import pytest

from sessionward.core.risk import Network, Observation, SeenNetwork, SessionRisk, Signals
from sessionward.core.risk_types import quick_init


@dataclasses.dataclass(frozen=True, slots=True)
class Plain:
    a: int
    b: str = "b"
    c: tuple[int, ...] = ()


Quick = quick_init(
    dataclasses.make_dataclass(
        "Quick", [("a", int), ("b", str, "b"), ("c", tuple[int, ...], ())], frozen=True, slots=True
    )
)


@pytest.mark.parametrize(
    ("args", "kwargs"), [((1,), {}), ((1, "x"), {}), ((1,), {"c": (2,)}), ((), {"a": 3, "b": ""})]
)
def test_quick_init_takes_the_same_arguments_and_keeps_the_same_values(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    plain, quick = Plain(*args, **kwargs), Quick(*args, **kwargs)
    assert dataclasses.astuple(plain) == dataclasses.astuple(quick)
    assert "_set_a" in Quick.__init__.__globals__  # the slots' setters, not object.__setattr__
    with pytest.raises(TypeError):
        Quick()
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.a = 2  # type: ignore[misc]


def test_the_engine_values_use_it_and_post_init_still_runs() -> None:
    for cls in (Network, Signals, Observation, SeenNetwork, SessionRisk):
        first = dataclasses.fields(cls)[0].name
        assert f"_set_{first}" in cls.__init__.__globals__
    net = Network("198.51.100.0/24", "Example", "GB")
    assert (net.prefix, net.asn, net.country, net.kind) == ("198.51.100.0/24", "Example", "GB", "")
    seen = SeenNetwork(net, 1.0, 2.0, 0.0)
    session = SessionRisk((seen,), Signals(net), 2.0)
    assert session.tree  # built by __post_init__
    vpn = Network("198.51.100.0/24", "Example", "GB", "vpn")
    assert dataclasses.replace(net, kind="vpn") == vpn


def test_a_field_with_a_factory_keeps_the_generated_init() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        items: list[int] = dataclasses.field(default_factory=list)

    init = Factory.__init__
    assert quick_init(Factory).__init__ is init

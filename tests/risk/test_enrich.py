"""Enrichment on real data: geoip2fast's addresses, ua-parser's user agents, the kinds list."""

from __future__ import annotations

import ipaddress
import json
import random
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("geoip2fast", reason="the risk extra is not installed")
pytest.importorskip("ua_parser", reason="the risk extra is not installed")

from agents import IPHONE

from sessionward import ConfigError
from sessionward.core.context import RequestContext
from sessionward.core.risk import (
    Browser,
    Decision,
    Network,
    assess,
    begin,
    remember,
)
from sessionward.core.risk_history import Population, UserRisk
from sessionward.core.risk_policy import RiskPolicy
from sessionward.risk import Enricher, NetworkKinds, agents, geoip2fast_lookup, prefix_of
from sessionward.risk.agents import (
    language_of,
    parse_user_agent,
    platform_mismatch,
    platform_of,
)
from sessionward.risk.networks import address_number, geoip2fast_block, locate, split

SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.4 Safari/605.1.15"
)
CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPAD = IPHONE.replace("iPhone; CPU iPhone OS", "iPad; CPU OS")
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.0.0 Mobile Safari/537.36"
)
ANDROID_TABLET = ANDROID_PHONE.replace("Pixel 8", "SM-X710").replace(" Mobile ", " ")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize(
    ("address", "prefix"),
    [
        ("81.2.69.160", "81.2.69.0/24"),
        ("2a03:2880:f003:c07:face:b00c::2", "2a03:2880:f003::/48"),
        ("::ffff:81.2.69.160", "81.2.69.0/24"),
        ("not an address", None),
        ("", None),
    ],
)
def test_prefixes(address: str, prefix: str | None) -> None:
    assert prefix_of(address) == prefix


@pytest.mark.parametrize(
    ("address", "owner", "country"),
    [
        ("185.220.101.1", "Stiftung Erneuerbare Freiheit", "DE"),
        ("8.8.8.8", "GOOGLE", "US"),
        ("81.2.69.160", "Andrews & Arnold Ltd", "GB"),
        ("2a03:2880:f003:c07:face:b00c::2", "FACEBOOK", "US"),
        ("10.1.2.3", "", ""),  # private
        ("198.51.100.1", "", ""),  # documentation range: no owner
    ],
)
def test_addresses_resolve_offline_to_owner_and_country(
    address: str, owner: str, country: str
) -> None:
    assert geoip2fast_lookup(address) == (owner, country)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("185.220.101.1", "tor"),  # Stiftung Erneuerbare Freiheit
        ("109.70.100.1", "tor"),  # Foundation for Applied Privacy
        ("185.65.134.1", "vpn"),  # 31173 Services (Mullvad)
        ("89.238.178.1", "vpn"),  # M247
        ("52.94.0.1", "hosting"),  # AMAZON-02
        ("81.2.69.160", ""),  # a British ISP
    ],
)
def test_network_kinds_from_the_shipped_list(address: str, kind: str) -> None:
    assert Enricher().signals(RequestContext(ip=address)).network.kind == kind


def test_the_shipped_list_is_documented_and_matches_case_insensitively() -> None:
    text = resources.files("sessionward.risk").joinpath("networks.json").read_text("utf-8")
    data = json.loads(text)
    kinds = NetworkKinds.default()
    for kind in NetworkKinds.KINDS:
        assert data[kind]["why"]
        assert all(kinds(name.upper()) == kind for name in data[kind]["names"])
    assert len(kinds) == sum(len(data[k]["names"]) for k in NetworkKinds.KINDS)
    assert kinds("") == ""
    assert kinds("Some Home ISP") == ""


@pytest.mark.parametrize("bad", [{"proxy": ["X"]}, {"tor": "X"}])
def test_a_bad_kinds_list_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        NetworkKinds(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (SAFARI_MAC, Browser("Safari", 17, "Mac OS X", 10, "desktop")),
        (CHROME_WIN, Browser("Chrome", 126, "Windows", 10, "desktop")),
        (FIREFOX_LINUX, Browser("Firefox", 133, "Linux", None, "desktop")),
        (IPHONE, Browser("Mobile Safari", 17, "iOS", 17, "mobile")),
        (IPAD, Browser("Mobile Safari", 17, "iOS", 17, "tablet")),
        (ANDROID_PHONE, Browser("Chrome Mobile", 126, "Android", 14, "mobile")),
        (ANDROID_TABLET, Browser("Chrome", 126, "Android", 14, "tablet")),
        ("curl/8.0", Browser("curl", 8, "", None, "tool")),
        ("python-requests/2.31", Browser("Python Requests", 2, "", None, "tool")),
        (GOOGLEBOT, Browser("Googlebot", 2, "", None, "bot")),
        ("", Browser()),
    ],
)
def test_user_agents_parse_to_family_version_system_and_device(
    user_agent: str, expected: Browser
) -> None:
    assert parse_user_agent(user_agent) == expected


@pytest.mark.parametrize(
    ("header", "tag"),
    [
        ("en-GB,en;q=0.9", "en-gb"),
        ("de", "de"),
        ("zh-Hant-TW,zh;q=0.8", "zh-hant"),
        ("fr-CH;q=0.9", "fr-ch"),
        ("*", ""),
        ("<script>", ""),
        (None, ""),
    ],
)
def test_the_first_accept_language_range(header: str | None, tag: str) -> None:
    assert language_of(header) == tag


def test_platform_hint_and_its_consistency() -> None:
    assert platform_of({"sec-ch-ua-platform": '"Windows"'}) == "Windows"
    assert platform_of({"sec-ch-ua-platform": '"<b>"'}) == ""
    assert platform_of({}) == ""
    chrome = parse_user_agent(CHROME_WIN)
    assert not platform_mismatch(chrome, "Windows")
    assert platform_mismatch(chrome, "macOS")
    assert platform_mismatch(parse_user_agent(SAFARI_MAC), "macOS")  # Safari sends no hints
    assert not platform_mismatch(parse_user_agent(SAFARI_MAC), "")


def test_an_unchanged_context_is_a_cache_hit() -> None:
    enricher = Enricher()
    context = RequestContext(ip="81.2.69.160", user_agent=CHROME_WIN, accept_language="en-GB")
    assert enricher.signals(context) is enricher.signals(RequestContext(**context.to_json()))


def test_the_caches_are_bounded() -> None:
    seen: list[str] = []

    def geo(address: str) -> tuple[str, str]:
        seen.append(address)
        return "Example Net", "GB"

    enricher = Enricher(geo=geo, cache_size=2)
    for third in (1, 2, 3, 1):
        enricher.signals(RequestContext(ip=f"81.2.{third}.7"))
    assert seen == ["81.2.1.7", "81.2.2.7", "81.2.3.7", "81.2.1.7"]  # 81.2.1.0/24 was forgotten


def test_a_new_address_in_a_known_block_needs_no_lookup() -> None:
    seen: list[str] = []

    def geo(address: str) -> tuple[str, str]:
        seen.append(address)
        return "Example Net", "GB"

    enricher = Enricher(geo=geo)
    first = enricher.signals(RequestContext(ip="81.2.69.1")).network
    again = enricher.signals(RequestContext(ip="81.2.69.200")).network
    assert seen == ["81.2.69.1"]
    assert again == first


def test_cache_size_is_checked() -> None:
    with pytest.raises(ConfigError):
        Enricher(cache_size=0)


def test_the_observation_carries_the_injected_time() -> None:
    obs = Enricher().observe(RequestContext(ip="8.8.8.8"), 1234.5, previous_secret=True)
    assert (obs.t, obs.previous_secret) == (1234.5, True)
    assert obs.signals.network == Network("8.8.8.0/24", "GOOGLE", "US", "")


def test_the_stolen_cookie_from_a_tor_exit_is_not_allowed() -> None:
    """A session signed in from 198.51.100.1 in Safari on macOS, then presented from a Tor
    exit by curl with Accept-Language: ru."""
    enricher, policy = Enricher(), RiskPolicy()
    owner = RequestContext(ip="198.51.100.1", user_agent=SAFARI_MAC, accept_language="en-US")
    thief = RequestContext(ip="185.220.101.1", user_agent="curl/8.0", accept_language="ru")
    login = enricher.observe(owner, 0.0)
    session, user = begin(login), remember(UserRisk(), None, login, policy)
    again = assess(enricher.observe(owner, 60.0), session, user, Population(), policy)
    stolen = assess(enricher.observe(thief, 120.0), session, user, Population(), policy)
    assert again.decision is Decision.ALLOW
    assert stolen.decision is Decision.REVOKE
    groups = {r.group for r in stolen.reasons if r.weight > 0}
    assert {"network", "browser", "language"} <= groups
    assert any(r.detail == "a Tor exit" for r in stolen.reasons)


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The addresses the enricher looks up in geoip2fast's data (the real lookup, counted)."""
    from sessionward.risk import enrich

    addresses: list[str] = []

    def counted(address: str) -> tuple[str, str, int, int]:
        addresses.append(address)
        return geoip2fast_block(address)

    monkeypatch.setattr(enrich, "geoip2fast_block", counted)
    return addresses


def test_a_new_block_inside_a_database_range_looked_up_before_needs_no_lookup(
    asked: list[str],
) -> None:
    enricher = Enricher()
    # Comcast's 73.0.0.0/13 is one block of the data (AS and country); 81.2.69.0/24 another.
    addresses = ["73.1.2.3", "73.5.9.9", "73.7.0.1", "81.2.69.160", "73.200.9.9"]
    found = [enricher.signals(RequestContext(ip=a)).network for a in addresses]
    assert asked == ["73.1.2.3", "81.2.69.160", "73.200.9.9"]
    for address, network in zip(addresses, found, strict=True):
        assert (network.asn, network.country) == geoip2fast_lookup(address)


def test_database_ranges_hold_one_owner_and_country() -> None:
    asn, country, first, last = geoip2fast_block("81.2.69.160")
    assert (asn, country) == geoip2fast_lookup("81.2.69.160")
    assert first <= address_number("81.2.69.160") <= last
    assert geoip2fast_lookup(str(ipaddress.IPv4Address(first))) == (asn, country)
    assert geoip2fast_lookup(str(ipaddress.IPv4Address(last))) == (asn, country)
    *_, first6, last6 = geoip2fast_block("2a02:8010::1")
    assert last < first6 <= address_number("2a02:8010::1") <= last6  # IPv6 above IPv4
    private = geoip2fast_block("10.1.2.3")
    assert private[:2] == ("", "")


# AMAZON-02's block 35.80.0.0/12 ends where the US country block 35.96.0.0/11 begins; no AS
# block holds 35.96.0.0 to 35.127.255.255, and ROCKET-FIBER's 35.128.0.0/19 follows.
AMAZON_LAST, GAP_FIRST, GAP_LAST, ROCKET_FIBER = (
    "35.95.255.1",
    "35.96.0.1",
    "35.127.255.254",
    "35.128.0.1",
)


@pytest.mark.parametrize(
    ("address", "owner", "kind"),
    [
        (AMAZON_LAST, "AMAZON-02", "hosting"),
        (GAP_FIRST, "", ""),
        ("35.101.177.245", "", ""),
        (GAP_LAST, "", ""),
        (ROCKET_FIBER, "ROCKET-FIBER", ""),
    ],
)
def test_an_address_between_as_blocks_keeps_its_country_and_has_no_owner(
    address: str, owner: str, kind: str
) -> None:
    assert geoip2fast_lookup(address) == (owner, "US")
    assert geoip2fast_block(address)[:2] == (owner, "US")
    network = Enricher().signals(RequestContext(ip=address)).network
    assert (network.asn, network.country, network.kind) == (owner, "US", kind)


def test_a_cached_range_never_answers_for_an_address_beside_it(asked: list[str]) -> None:
    enricher = Enricher()
    addresses = [AMAZON_LAST, GAP_FIRST, "35.101.177.245", GAP_LAST, ROCKET_FIBER, "35.95.0.1"]
    found = [enricher.signals(RequestContext(ip=a)).network for a in addresses]
    assert [n.asn for n in found] == ["AMAZON-02", "", "", "", "ROCKET-FIBER", "AMAZON-02"]
    assert {n.country for n in found} == {"US"}
    # The gap is one range: its first lookup answers for the rest of it, and for nothing else.
    assert asked == [AMAZON_LAST, GAP_FIRST, ROCKET_FIBER]


def test_every_database_range_holds_its_address_and_one_answer() -> None:
    rng = random.Random(5)
    for _ in range(1500):
        address = str(ipaddress.IPv4Address(rng.randrange(1 << 24, 224 << 24)))
        asn, country, first, last = geoip2fast_block(address)
        assert (asn, country) == geoip2fast_lookup(address)
        if first > last:
            continue
        assert first <= address_number(address) <= last
        for number in (first, last, rng.randint(first, last)):
            inside = str(ipaddress.IPv4Address(number))
            assert geoip2fast_lookup(inside) == (asn, country), (address, inside)


@pytest.mark.parametrize(
    ("address", "prefix"),
    [
        ("fe80::1%eth0", "fe80::/48"),  # link-local, with the interface's zone
        ("2a02:8010::1%1", "2a02:8010::/48"),
        ("::ffff:81.2.69.160%2", "81.2.69.0/24"),
    ],
)
def test_an_ipv6_zone_is_dropped(address: str, prefix: str) -> None:
    # The zone names an interface on the peer's side: the address is the same network.
    assert prefix_of(address) == prefix
    assert locate(address) is not None
    network = Enricher().observe(RequestContext(ip=address), 0.0).signals.network
    assert network.prefix == prefix
    if prefix.startswith("2a02:8010"):
        assert network.country == "GB"


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(alphabet="0123456789abcdefABCDEF.:%[]/ ,-x", max_size=48),
        st.ip_addresses().map(str),
        st.builds("{}%{}".format, st.ip_addresses(v=6), st.text(max_size=8)),
        st.builds("{}:{}".format, st.ip_addresses(v=4), st.integers(0, 65535)),
    )
)
def test_any_address_string_is_observed_without_an_error(address: str) -> None:
    # Adapters pass what the server or a trusted proxy says; the service takes a string.
    network = _ENRICHER.observe(RequestContext(ip=address), 0.0).signals.network
    assert network.prefix == (prefix_of(address) or "")


_ENRICHER = Enricher()


@pytest.mark.parametrize(
    "address",
    ["81.2.69.160", "::ffff:81.2.69.160", "2a02:8010::1", "01.2.3.4", "1.2.3.256", "", "x"],
)
def test_locate_agrees_with_split(address: str) -> None:
    located, parts = locate(address), split(address)
    assert (located[:2] if located else None) == parts
    if located is not None:
        assert located[2] == address_number(located[1])


@pytest.mark.parametrize(
    "user_agent",
    [
        GOOGLEBOT,
        CHROME_WIN,
        "bot",
        "robot/1.0",
        "abot1",
        "bots",
        "x BOT;",
        "bot_x",
        "bot-x",
        "Mozilla/5.0 (compatible; bingbot/2.0)",
        "AhrefsCrawler",
        "SPIDER",
        "Yahoo! Slurp",
        "BingPreview/1.0b",
        "botany",
        "bot\u212a",  # the Kelvin sign: a word character, folds to "k"
        "\u017fpider",  # the long s folds to "s" under the pattern only
        "robot é",
        "roboté",
    ],
)
def test_the_bot_check_answers_as_the_pattern(user_agent: str) -> None:
    assert agents._is_bot(user_agent) is (agents._BOT.search(user_agent) is not None)


def test_random_strings_get_the_same_bot_answer_as_the_pattern() -> None:
    rng = random.Random(7)
    letters = "botBOTcrawlspiderslurpxk_ 9;-/é\u212a\u017f"
    for _ in range(20_000):
        text = "".join(rng.choice(letters) for _ in range(rng.randint(0, 12)))
        assert agents._is_bot(text) is (agents._BOT.search(text) is not None), text


def test_the_native_matcher_is_used_when_installed() -> None:
    pytest.importorskip("ua_parser_rs", reason="ua-parser-rs is not installed")
    from ua_parser.regex import Resolver

    assert isinstance(agents._parser().resolver, Resolver)

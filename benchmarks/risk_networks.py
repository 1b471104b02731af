"""Build ``risk_networks.json``: real networks, by country and role, for the trace generator.

    python benchmarks/risk_networks.py            # rewrites benchmarks/risk_networks.json

Every prefix in the table comes from the GeoLite2-derived data shipped with geoip2fast: random
public addresses (and, for the small VPN and Tor networks, a few known addresses) are looked
up, and the block holding each is kept: the smaller of its country block and its AS block, so
every address in it has one owner and one country; an address between AS blocks is skipped.
The roles and the rough market shares are ours (see the table below); the generator only
reads the JSON, so traces do not depend on geoip2fast being installed.
"""

from __future__ import annotations

import ipaddress
import json
import random
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("risk_networks.json")

# country -> role -> [(AS name as the data spells it, rough share of that role's users)].
# Shares are rough orders of magnitude from the operators' public subscriber figures; the
# generator only needs "a few big networks and some small ones" per country.
ACCESS: dict[str, dict[str, list[tuple[str, float]]]] = {
    "US": {
        "fixed": [
            ("COMCAST-7922", 0.35),
            ("CHARTER-20115", 0.25),
            ("ATT-INTERNET4", 0.25),
            ("CENTURYLINK-US-LEGACY-QWEST", 0.1),
            ("FRONTIER-FRTR", 0.05),
        ],
        "mobile": [
            ("T-MOBILE-AS21928", 0.4),
            ("CELLCO-PART", 0.35),
            ("ATT-MOBILITY-LLC-AS20057", 0.25),
        ],
        "business": [("UUNET", 0.4), ("LEVEL3", 0.4), ("ZAYO-6461", 0.2)],
    },
    "GB": {
        "fixed": [
            ("British Telecommunications PLC", 0.4),
            ("Virgin Media", 0.3),
            ("Sky UK Limited", 0.3),
        ],
        "mobile": [("EE Limited", 0.4), ("Vodafone Limited", 0.3), ("Telefonica O2 UK", 0.3)],
        "business": [("COLT Technology Services Group Limited", 1.0)],
    },
    "DE": {
        "fixed": [
            ("Deutsche Telekom AG", 0.45),
            ("Vodafone GmbH", 0.3),
            ("Telefonica Germany", 0.15),
            ("1&1 Versatel Deutschland GmbH", 0.1),
        ],
        "mobile": [
            ("Deutsche Telekom AG", 0.4),
            ("Vodafone GmbH", 0.3),
            ("Telefonica Germany", 0.3),
        ],
        "business": [
            ("COLT Technology Services Group Limited", 0.5),
            ("Deutsche Telekom Global Business Solutions GmbH", 0.5),
        ],
    },
    "FR": {
        "fixed": [
            ("Orange", 0.4),
            ("Free SAS", 0.25),
            ("Societe Francaise Du Radiotelephone - SFR SA", 0.2),
            ("Bouygues Telecom SA", 0.15),
        ],
        "mobile": [
            ("Orange", 0.35),
            ("Societe Francaise Du Radiotelephone - SFR SA", 0.25),
            ("Bouygues Telecom SA", 0.2),
            ("Free Mobile SAS", 0.2),
        ],
        "business": [("COLT Technology Services Group Limited", 1.0)],
    },
    "IT": {
        "fixed": [
            ("Telecom Italia", 0.45),
            ("Fastweb", 0.2),
            ("Vodafone Italia S.p.A.", 0.15),
            ("Wind Tre S.p.A.", 0.2),
        ],
        "mobile": [
            ("Telecom Italia", 0.3),
            ("Vodafone Italia S.p.A.", 0.3),
            ("Wind Tre S.p.A.", 0.4),
        ],
        "business": [("Fastweb", 1.0)],
    },
    "ES": {
        "fixed": [
            ("Telefonica De Espana S.a.u.", 0.45),
            ("Vodafone Ono, S.A.", 0.25),
            ("Orange Espagne SA", 0.3),
        ],
        "mobile": [
            ("Telefonica De Espana S.a.u.", 0.35),
            ("Vodafone Spain", 0.3),
            ("Orange Espagne SA", 0.35),
        ],
        "business": [("Telefonica De Espana S.a.u.", 1.0)],
    },
    "NL": {
        "fixed": [
            ("KPN B.V.", 0.45),
            ("Vodafone Libertel B.V.", 0.4),
            ("Odido Netherlands B.V.", 0.15),
        ],
        "mobile": [
            ("KPN B.V.", 0.35),
            ("Vodafone Libertel B.V.", 0.35),
            ("Odido Netherlands B.V.", 0.3),
        ],
        "business": [("KPN B.V.", 1.0)],
    },
    "CA": {
        "fixed": [("BACOM", 0.35), ("ROGERS-COMMUNICATIONS", 0.35), ("TELUS Communications", 0.3)],
        "mobile": [("ROGERS-COMMUNICATIONS", 0.4), ("TELUS Communications", 0.35), ("BACOM", 0.25)],
        "business": [("LEVEL3", 1.0)],
    },
    "BR": {
        "fixed": [
            ("Claro NXT Telecomunicacoes Ltda", 0.4),
            ("TELEFONICA BRASIL S.A", 0.35),
            ("TIM SA", 0.25),
        ],
        "mobile": [
            ("Claro NXT Telecomunicacoes Ltda", 0.35),
            ("TIM SA", 0.35),
            ("TELEFONICA BRASIL S.A", 0.3),
        ],
        "business": [("TELEFONICA BRASIL S.A", 1.0)],
    },
    "IN": {
        "fixed": [
            ("Bharti Airtel Ltd., Telemedia Services", 0.5),
            ("Reliance Jio Infocomm Limited", 0.5),
        ],
        "mobile": [
            ("Reliance Jio Infocomm Limited", 0.5),
            ("Bharti Airtel Ltd. AS for GPRS Service", 0.35),
            ("Vodafone Idea Ltd", 0.15),
        ],
        "business": [("Bharti Airtel Ltd., Telemedia Services", 1.0)],
    },
    "JP": {
        "fixed": [
            ("NTT Communications Corporation", 0.4),
            ("KDDI CORPORATION", 0.3),
            ("SoftBank Corp.", 0.3),
        ],
        "mobile": [("NTT DOCOMO, INC.", 0.45), ("KDDI CORPORATION", 0.3), ("SoftBank Corp.", 0.25)],
        "business": [("NTT Communications Corporation", 1.0)],
    },
    "AU": {
        "fixed": [
            ("Telstra Limited", 0.45),
            ("TPG Telecom Limited", 0.35),
            ("SingTel Optus Pty Ltd", 0.2),
        ],
        "mobile": [
            ("Telstra Limited", 0.5),
            ("SingTel Optus Pty Ltd", 0.3),
            ("TPG Telecom Limited", 0.2),
        ],
        "business": [("Telstra Limited", 1.0)],
    },
    # Countries that appear as attackers' and travellers' networks.
    "RU": {
        "fixed": [("Rostelecom", 0.5), ("PVimpelCom", 0.5)],
        "mobile": [("MTS PJSC", 0.5), ("PJSC MegaFon", 0.5)],
    },
    "UA": {"fixed": [("JSC Ukrtelecom", 1.0)], "mobile": [("Kyivstar PJSC", 1.0)]},
    "NG": {"mobile": [("MTN NIGERIA Communication limited", 1.0)]},
    "VN": {
        "fixed": [("VNPT Corp", 0.5), ("Viettel Group", 0.5)],
        "mobile": [("Viettel Group", 1.0)],
    },
    "CN": {"fixed": [("Chinanet", 0.6), ("CHINA UNICOM China169 Backbone", 0.4)]},
    "ID": {"fixed": [("PT Telekomunikasi Indonesia", 1.0)]},
    "TR": {
        "fixed": [("Turk Telekom", 0.5), ("Superonline Iletisim Hizmetleri A.S.", 0.5)],
        "mobile": [("Turkcell Iletisim Hizmetleri A.s.", 1.0)],
    },
}

# role -> AS names; their countries are whatever the data says.
SERVICES: dict[str, list[str]] = {
    "hosting": [
        "AMAZON-02",
        "DIGITALOCEAN-ASN",
        "Hetzner Online GmbH",
        "OVH SAS",
        "AS-CHOOPA",
        "Akamai Connected Cloud",
        "Contabo GmbH",
        "GOOGLE-CLOUD-PLATFORM",
        "MICROSOFT-CORP-MSN-AS-BLOCK",
    ],
    "vpn": [
        "M247 Europe SRL",
        "Datacamp Limited",
        "31173 Services AB",
        "PacketHub S.A.",
        "Proton AG",
        "WINDSCRIBE",
    ],
    "tor": [
        "Stiftung Erneuerbare Freiheit",
        "F3 Netze e.V.",
        "Foundation for Applied Privacy",
        "EMERALD-ONION",
    ],
}
# Known addresses in networks too small for random sampling to find.
SEEDS = [
    "185.220.100.240",
    "185.220.101.1",
    "185.220.102.8",
    "2a0b:f4c2::1",
    "109.70.100.1",
    "23.129.64.130",
    "185.65.134.1",
    "193.138.218.1",
    "45.83.220.1",
    "89.238.178.1",
    "156.146.62.1",
    "185.159.157.1",
    "185.159.158.1",
    "149.36.48.1",
    "2a02:6ea0:c000::1",
    "37.19.200.1",
    "212.102.35.1",
    "138.199.0.1",
    "185.107.56.1",
    "84.17.34.1",
]
PER_NETWORK = 12


def main() -> None:
    from geoip2fast import GeoIP2Fast

    geo = GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn-ipv6.dat.gz")
    wanted: dict[str, set[str]] = {}
    for country, roles in ACCESS.items():
        for role, members in roles.items():
            for name, _ in members:
                wanted.setdefault(name, set()).add(f"{country}:{role}")
    for role, names in SERVICES.items():
        for name in names:
            wanted.setdefault(name, set()).add(f"*:{role}")

    found: dict[tuple[str, str], dict[str, set[str]]] = {}

    def note(address: str) -> None:
        result = geo.lookup(address)
        if result.asn_name in wanted and result.asn_cidr and len(result.country_code) == 2:
            block = _one_owner_one_country(address, result.cidr, result.asn_cidr)
            if block is None:
                return
            family = "v6" if ":" in address else "v4"
            cidrs = found.setdefault(
                (result.asn_name, result.country_code), {"v4": set(), "v6": set()}
            )
            cidrs[family].add(block)

    rng = random.Random(20240618)
    random.seed(20240618)  # geoip2fast's IPv6 sampler uses the global generator
    for address in SEEDS:
        note(address)
    for _ in range(3_000_000):
        note(_v4(rng))
    for address in geo.generate_random_ipv6_address(400_000):
        note(address)

    networks: list[dict[str, Any]] = []
    for country, roles in ACCESS.items():
        for role, members in roles.items():
            for name, share in members:
                cidrs = found.get((name, country))
                if cidrs and cidrs["v4"]:
                    networks.append(_entry(name, country, role, share, cidrs, rng))
    for role, names in SERVICES.items():
        for (name, country), cidrs in sorted(found.items()):
            if name in names and cidrs["v4"]:
                networks.append(_entry(name, country, role, 1.0, cidrs, rng))
    OUT.write_text(
        json.dumps({"source": "geoip2fast 1.2.2 (GeoLite2 ASN)", "networks": networks}, indent=0)
        + "\n"
    )
    missing = sorted({n for n in wanted} - {name for name, _ in found})
    print(f"{len(networks)} networks written to {OUT}; not found: {missing}")


def _one_owner_one_country(address: str, country_block: str, owner_block: str) -> str | None:
    """The smaller of the two blocks holding the address: every address in it then has the
    same owner and the same country. ``None`` if the address is not in the AS block: geoip2fast
    names the AS block before an address that no AS block holds."""
    if ipaddress.ip_address(address) not in ipaddress.ip_network(owner_block):
        return None
    blocks = [ipaddress.ip_network(b) for b in (country_block, owner_block) if b]
    return str(max(blocks, key=lambda b: b.prefixlen))


def _v4(rng: random.Random) -> str:
    value = rng.randint(1 << 24, (224 << 24) - 1)
    return ".".join(str(value >> shift & 255) for shift in (24, 16, 8, 0))


def _entry(
    name: str, country: str, role: str, share: float, cidrs: dict[str, set[str]], rng: random.Random
) -> dict[str, Any]:
    def pick(items: set[str]) -> list[str]:
        ordered = sorted(items)
        return sorted(rng.sample(ordered, min(PER_NETWORK, len(ordered))))

    return {
        "asn": name,
        "country": country,
        "role": role,
        "share": share,
        "v4": pick(cidrs["v4"]),
        "v6": pick(cidrs["v6"]),
    }


if __name__ == "__main__":
    main()

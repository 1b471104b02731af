"""The risk engine's settings: thresholds, the probabilities behind the network model, the
weights of the browser and behaviour signals, and how much history is kept.

Weights are log likelihood ratios (natural log): +2.3 says "ten times likelier from an
attacker than from the owner". The defaults are for a shop or a SaaS: a step-up (one more
sign-in) for a request that looks like it came from someone else, a revoke only when two
independent groups of evidence agree. See docs/risk.md for the reasoning behind each value.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from sessionward.errors import ConfigError

__all__ = ["RiskPolicy"]

_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RiskPolicy:
    """Every knob of the risk engine, validated on construction.

    Decisions: ``log_at``, ``step_up_at``, ``revoke_at`` are score thresholds; a revoke also
    needs two groups of evidence (network, browser, language, platform, device, behaviour)
    whose weights each add up to ``corroboration``. ``step_up_alone_at`` (0: off) raises the
    step-up threshold, up to ``revoke_at``, for a request whose only evidence is the network
    (every browser attribute the session's, no behaviour reason): below it, a log.

    The network model (probabilities). When a legitimate request leaves its session's
    networks, ``move_kind``, ``move_country``, ``move_network``, ``move_prefix`` say where it
    first differs: another kind of network (ordinary, hosting, VPN, Tor), another country,
    another network (AS) or another prefix of the same network; they sum to 1 and are priors,
    worth ``move_weight`` moves, until the population's own counts take over; a user's own
    moves (a VPN user switches kind often) count against the population's, which is worth
    ``user_move_weight`` of them.
    ``attacker_local`` is how often an attacker works from the victim's own network;
    ``attacker_same_country`` how often from the victim's country (residential proxies);
    elsewhere, ``attacker_anywhere`` of them come from any country at all rather than from
    the population's countries;
    ``attacker_tor``/``_vpn``/``_hosting`` the share of attackers on such networks, against
    ``population_tor``/``_vpn``/``_hosting`` (priors, worth ``population_weight`` sessions,
    for the share among all users). ``novelty_cap`` bounds what one level of the user's
    history can say (in log units). ``*_vocabulary``: how many values the population is
    assumed to spread over before it has been counted.

    ``browser_same`` (0: off; at most 0) is added when every browser attribute is the
    session's (user agent, language, platform hint, device signal): thieves who copy the user
    agent do not always copy the rest. It lowers every such score, a thief's with a full copy
    too; docs/risk.md gives what it trades on the evaluation corpora.
    """

    log_at: float = 2.5
    step_up_at: float = 5.0
    revoke_at: float = 9.0
    corroboration: float = 2.5
    step_up_alone_at: float = 0.0

    move_kind: float = 0.03
    move_country: float = 0.005
    move_network: float = 0.15
    move_prefix: float = 0.815
    move_weight: float = 1000.0
    user_move_weight: float = 4.0
    attacker_local: float = 0.02
    attacker_same_country: float = 0.35
    attacker_anywhere: float = 0.5
    attacker_tor: float = 0.05
    attacker_vpn: float = 0.2
    attacker_hosting: float = 0.15
    population_tor: float = 0.001
    population_vpn: float = 0.02
    population_hosting: float = 0.01
    population_weight: float = 1000.0
    novelty_cap: float = 3.0
    countries_vocabulary: int = 200
    networks_vocabulary: int = 50
    prefixes_vocabulary: int = 500

    browser_same: float = 0.0
    browser_update: float = 0.7
    browser_max_update: int = 3
    browser_jump: float = 2.0
    browser_downgrade: float = 3.0
    browser_family: float = 4.0
    browser_os: float = 5.0
    browser_device: float = 5.5
    language_region: float = 1.0
    language_changed: float = 3.0
    language_missing: float = 2.0
    language_added: float = 1.0
    platform_changed: float = 4.0
    platform_missing: float = 2.0
    platform_added: float = 1.0
    platform_mismatch: float = 3.0
    device_same: float = -1.0
    device_changed: float = 5.0
    device_missing: float = 0.5
    device_added: float = 0.5

    concurrent: float = 3.5
    concurrent_window: float = 600.0
    travel: float = 2.0
    travel_window: float = 3600.0
    velocity: float = 1.5
    velocity_limit: float = 600.0
    rate_half_life: float = 60.0
    previous_secret: float = 7.0

    session_networks: int = 8
    user_countries: int = 8
    user_networks: int = 16
    user_prefixes: int = 32
    history_half_life: float = 30 * _DAY
    history_retention: float = 90 * _DAY

    def __post_init__(self) -> None:
        if not 0 < self.log_at <= self.step_up_at <= self.revoke_at:
            raise ConfigError("need 0 < log_at <= step_up_at <= revoke_at")
        if self.step_up_alone_at and not self.step_up_at <= self.step_up_alone_at <= self.revoke_at:
            raise ConfigError(
                "step_up_alone_at must be 0 (off) or between step_up_at and revoke_at"
            )
        if self.corroboration <= 0:
            raise ConfigError("corroboration must be positive")
        for name in _PROBABILITIES:
            if not 0 < getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a probability strictly between 0 and 1")
        moves = (self.move_kind, self.move_country, self.move_network, self.move_prefix)
        if abs(sum(moves) - 1) > 1e-6:
            raise ConfigError("move_kind + move_country + move_network + move_prefix must be 1")
        if self.attacker_tor + self.attacker_vpn + self.attacker_hosting >= 1:
            raise ConfigError("attacker_tor + attacker_vpn + attacker_hosting must be below 1")
        if self.population_tor + self.population_vpn + self.population_hosting >= 1:
            raise ConfigError(
                "population_tor + population_vpn + population_hosting must be below 1"
            )
        for name in _POSITIVE:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive")
        for name in _COUNTS:
            if not 1 <= getattr(self, name) <= 1024:
                raise ConfigError(f"{name} must be between 1 and 1024")
        if self.browser_same > 0:
            raise ConfigError("browser_same is evidence for the owner: it must be at most 0")
        if self.history_retention < self.history_half_life:
            raise ConfigError("history_retention must be at least history_half_life")

    def attacker_kind(self, kind: str) -> float:
        """The share of attackers on a network of this kind (``""``: ordinary)."""
        if kind == "vpn":
            return self.attacker_vpn
        if kind == "hosting":
            return self.attacker_hosting
        if kind == "tor":
            return self.attacker_tor
        return 1 - self.attacker_vpn - self.attacker_hosting - self.attacker_tor

    def population_kind(self, kind: str) -> float:
        """The prior share of all users on a network of this kind."""
        if kind == "vpn":
            return self.population_vpn
        if kind == "hosting":
            return self.population_hosting
        if kind == "tor":
            return self.population_tor
        return 1 - self.population_vpn - self.population_hosting - self.population_tor


_PROBABILITIES = tuple(
    f.name
    for f in fields(RiskPolicy)
    if f.name.startswith(("move_", "attacker_", "population_"))
    and f.name not in ("population_weight", "move_weight", "user_move_weight")
)
_POSITIVE = (
    "population_weight",
    "move_weight",
    "user_move_weight",
    "novelty_cap",
    "countries_vocabulary",
    "networks_vocabulary",
    "prefixes_vocabulary",
    "concurrent_window",
    "travel_window",
    "velocity_limit",
    "rate_half_life",
    "history_half_life",
    "history_retention",
    "browser_max_update",
)
_COUNTS = ("session_networks", "user_countries", "user_networks", "user_prefixes")

"""Prometheus metrics in the text exposition format (version 0.0.4), written by hand.

No client library: a handful of counters, one histogram and two gauges, rendered on scrape.
Label values are our own route names and codes (never user input), escaped all the same.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable

from sessionward.service.activity import Activity

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class Metrics:
    """API request counts and latencies; everything else comes from :class:`Activity`."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.app_requests: Counter[tuple[str, str, str]] = Counter()
        self._hist: dict[str, list[int]] = {}
        self._sum: dict[str, float] = {}

    def observe(
        self, route: str, status: int, seconds: float, application: str | None = None
    ) -> None:
        self.requests[(route, str(status))] += 1
        if application is not None:  # the caller's key was authenticated
            self.app_requests[(application, route, str(status))] += 1
        counts = self._hist.get(route)
        if counts is None:
            counts = self._hist[route] = [0] * (len(BUCKETS) + 1)
        counts[bisect_left(BUCKETS, seconds)] += 1
        self._sum[route] = self._sum.get(route, 0.0) + seconds

    def render(
        self,
        activity: Activity,
        *,
        sessions: int | None,
        store_up: bool,
        application: str | None = None,
        event_log: dict[str, int] | None = None,
    ) -> str:
        """The exposition; the series labelled by application are ``application``'s only
        when it is given (an API key sees its own application's)."""
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

        def sample(name: str, value: float, **labels: str) -> None:
            lines.append(f"{name}{_labels(sorted(labels.items()))} {_number(value)}")

        family("sessionward_api_requests_total", "counter", "API requests by route and status.")
        for (route, status), count in sorted(self.requests.items()):
            sample("sessionward_api_requests_total", count, route=route, status=status)
        family(
            "sessionward_api_request_duration_seconds",
            "histogram",
            "Time to answer an API request.",
        )
        for route, counts in sorted(self._hist.items()):
            running = 0
            for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                sample(
                    "sessionward_api_request_duration_seconds_bucket", running, route=route, le=le
                )
            sample("sessionward_api_request_duration_seconds_sum", self._sum[route], route=route)
            sample("sessionward_api_request_duration_seconds_count", running, route=route)
        family("sessionward_validate_decisions_total", "counter", "Validate answers by decision.")
        for decision, count in sorted(activity.decisions_total.items()):
            sample("sessionward_validate_decisions_total", count, decision=decision)
        family("sessionward_events_total", "counter", "Session lifecycle events by kind.")
        for kind, count in sorted(activity.events_total.items()):
            sample("sessionward_events_total", count, kind=kind)
        family("sessionward_revocations_total", "counter", "Ended sessions by reason.")
        for reason, count in sorted(activity.revocations_total.items()):
            sample("sessionward_revocations_total", count, reason=reason)
        family("sessionward_rejections_total", "counter", "Rejected tokens by reason.")
        for reason, count in sorted(activity.rejections_total.items()):
            sample("sessionward_rejections_total", count, reason=reason)
        family(
            "sessionward_application_requests_total",
            "counter",
            "API requests by application, route and status.",
        )
        for (app, route, status), count in sorted(self.app_requests.items()):
            if application in (None, app):
                sample(
                    "sessionward_application_requests_total",
                    count,
                    application=app,
                    route=route,
                    status=status,
                )
        labelled = sorted(activity.by_application.items())
        for group, label in (("decision", "decision"), ("event", "kind")):
            name = f"sessionward_application_{group}s_total"
            family(name, "counter", f"Validate answers or events by application and {label}.")
            for (app, what), count in labelled:
                kind, _, value = what.partition(":")
                if kind == group and application in (None, app):
                    sample(name, count, application=app, **{label: value})
        if event_log is not None:
            for name, help_text in (
                ("written", "Events appended to the audit log."),
                ("dropped", "Events the audit log lost (buffer full, refused, at shutdown)."),
                ("failures", "Failed appends to the audit log (each retry counts)."),
            ):
                metric = f"sessionward_event_log_{name}_total"
                family(metric, "counter", help_text)
                sample(metric, event_log[name])
            family("sessionward_event_log_pending", "gauge", "Events queued for the audit log.")
            sample("sessionward_event_log_pending", event_log["pending"])
        family("sessionward_store_up", "gauge", "1 if the session store answered the scrape.")
        sample("sessionward_store_up", 1 if store_up else 0)
        if sessions is not None:
            family("sessionward_sessions", "gauge", "Stored sessions (expired ones until purged).")
            sample("sessionward_sessions", sessions)
        return "\n".join(lines) + "\n"

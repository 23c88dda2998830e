"""The contact center's Prometheus metrics, read from the live engine and statistics at scrape time.

Nothing is counted on the contact path: a scrape asks the routing engine for its queues and agents
now, and the live statistics (:meth:`StatsService.live`, kept from the event log) for today's counts.
The ``*_total`` counters are today's figures: they start again at 0 at the site's midnight (a counter
reset, which ``rate()`` and ``increase()`` handle) and come back unchanged after a restart, because
they are recomputed from the log. ``docs/metrics.md`` lists them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from frontoffice.domain.metrics import AGENT_STATES

if TYPE_CHECKING:
    from frontoffice.bootstrap import Container

__all__ = ["ContactCenterCollector"]

# Today's per-queue counts: metric name (without _total), help, field of LiveQueueFigures.
_COUNTS = (
    ("frontoffice_queue_offered", "Contacts that entered the queue today", "offered"),
    ("frontoffice_offers", "Offers made to agents today for contacts of the queue", "offers"),
    ("frontoffice_answers", "Contacts of the queue answered today", "answered"),
    ("frontoffice_abandons", "Contacts of the queue abandoned today (short abandons included)", "abandoned"),
    ("frontoffice_turned_away", "Contacts the queue turned away today (refused or fallback)", "turned_away"),
)


class ContactCenterCollector(Collector):
    """Queues, agents and today's counts of one node's ACD, for ``/metrics``."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def collect(self) -> Iterator[Metric]:
        acd = self.container.acd
        engine = acd.view
        now = acd.now()
        waiting = GaugeMetricFamily(
            "frontoffice_queue_contacts_waiting", "Contacts waiting in the queue now", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "frontoffice_queue_oldest_wait_seconds",
            "How long the oldest contact waiting in the queue has waited (0: none waiting)",
            labels=["queue"],
            unit="seconds",
        )
        for queue_id in engine.queue_ids():
            status = engine.queue_status(queue_id, now)
            waiting.add_metric([queue_id], status.waiting)
            oldest.add_metric([queue_id], status.longest_wait_s)
        yield waiting
        yield oldest

        agents = GaugeMetricFamily("frontoffice_agents", "Agents in each state now", labels=["state"])
        by_state: dict[str, int] = dict.fromkeys(AGENT_STATES, 0)
        for agent_id in engine.agent_ids():
            current: str = engine.agent_status(agent_id).state
            by_state[current] = by_state.get(current, 0) + 1
        for label, count in by_state.items():
            agents.add_metric([label], count)
        yield agents

        yield from self._cluster()

        live = self.container.stats.live()
        for name, documentation, field in _COUNTS:
            family = CounterMetricFamily(name, documentation, labels=["queue"])
            for queue, figures in live.items():
                family.add_metric([str(queue)], getattr(figures, field))
            yield family

    def _cluster(self) -> Iterator[Metric]:
        """This node's part in a cluster (docs/scaling.md); nothing on a single node."""
        cluster = self.container.cluster
        if cluster is None:
            return
        yield GaugeMetricFamily(
            "frontoffice_cluster_leader",
            "1 when this node holds the routing lease",
            value=int(cluster.leading),
        )
        yield GaugeMetricFamily(
            "frontoffice_cluster_dialler",
            "1 when this node holds the dialler lease and runs the campaign dialler",
            value=int(self.container.dialler.dialling),
        )
        yield GaugeMetricFamily(
            "frontoffice_cluster_epoch",
            "The routing leadership's epoch (fencing token) this node knows",
            value=cluster.leader_epoch,
        )
        yield GaugeMetricFamily(
            "frontoffice_cluster_bus_connected",
            "1 when this node is connected to NATS",
            value=int(cluster.bus_connected),
        )
        yield CounterMetricFamily(
            "frontoffice_cluster_commands_forwarded",
            "ACD commands this node sent to the leader and got answered",
            value=cluster.forwarded,
        )
        yield CounterMetricFamily(
            "frontoffice_cluster_commands_served",
            "ACD commands of other nodes this node ran as the leader",
            value=cluster.served,
        )
        yield CounterMetricFamily(
            "frontoffice_cluster_bus_reconnects",
            "Times this node's NATS connection was restored",
            value=cluster.link.reconnects,
        )

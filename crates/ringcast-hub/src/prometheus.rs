//! `GET /metrics`: the server's counters and the hub's own, per shard, in
//! the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use ringcast::Stats;

use crate::cluster::BridgeMetrics;
use crate::counters::{HistorySize, ShardMetrics, TopicCount};

/// A server series: name, type, help, and how to read it from the stats.
type ServerSeries = (&'static str, &'static str, &'static str, fn(&Stats) -> u64);
/// A hub counter series: name, help, and the counter.
type HubSeries = (&'static str, &'static str, fn(&ShardMetrics) -> &AtomicU64);

/// Renders the metrics: one sample per shard for each series.
pub fn render(
    stats: &[Stats],
    hub: &[ShardMetrics],
    topics: &TopicCount,
    bridge: Option<&BridgeMetrics>,
    history: Option<HistorySize>,
) -> String {
    let mut out = String::with_capacity(4096);
    series_header(&mut out, "ringcast_hub_topics", "gauge", "Topics with subscribers on this hub.");
    let _ = writeln!(out, "ringcast_hub_topics {}", topics.count());
    if let Some(history) = history {
        series_header(&mut out, "ringcast_hub_history_messages", "gauge", "Messages kept in the history.");
        let _ = writeln!(out, "ringcast_hub_history_messages {}", history.messages);
        let help = "Bytes the history holds, as counted against --history-memory.";
        series_header(&mut out, "ringcast_hub_history_bytes", "gauge", help);
        let _ = writeln!(out, "ringcast_hub_history_bytes {}", history.bytes);
    }
    let server: [ServerSeries; 8] = [
        ("ringcast_connections", "gauge", "Connections open now (any phase).", |s| s.connections),
        ("ringcast_accepted_total", "counter", "Connections accepted.", |s| s.accepted),
        ("ringcast_messages_received_total", "counter", "WebSocket messages received.", |s| s.messages),
        (
            "ringcast_messages_sent_total",
            "counter",
            "WebSocket messages queued for sending, one per receiving connection.",
            |s| s.messages_out,
        ),
        ("ringcast_bytes_received_total", "counter", "Bytes read from sockets.", |s| s.bytes_in),
        ("ringcast_bytes_sent_total", "counter", "Bytes written to sockets.", |s| s.bytes_out),
        ("ringcast_dropped_total", "counter", "Messages dropped for slow consumers (drop policy).", |s| s.dropped),
        ("ringcast_io_uring_enter_total", "counter", "io_uring_enter system calls.", |s| s.enters),
    ];
    for (name, kind, help, get) in server {
        series_header(&mut out, name, kind, help);
        for (shard, s) in stats.iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{shard}\"}} {}", get(s));
        }
    }
    let hub_series: [HubSeries; 4] = [
        ("ringcast_hub_publishes_total", "Publishes (WebSocket and HTTP).", |m| &m.publishes),
        ("ringcast_hub_publish_receivers_total", "Receivers the publishes were addressed to.", |m| &m.receivers),
        ("ringcast_hub_request_errors_total", "JSON requests answered with an error.", |m| &m.request_errors),
        (
            "ringcast_hub_refusals_total",
            "Upgrades refused (401, 403, 429) and connections closed (1008) by the access rules and limits.",
            |m| &m.refusals,
        ),
    ];
    for (name, help, get) in hub_series {
        series_header(&mut out, name, "counter", help);
        for (shard, m) in hub.iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{shard}\"}} {}", get(m).load(Ordering::Relaxed));
        }
    }
    series_header(&mut out, "ringcast_closes_total", "counter", "Closed WebSocket connections by close code.");
    for (shard, m) in hub.iter().enumerate() {
        for (code, count) in m.closes() {
            let _ = writeln!(out, "ringcast_closes_total{{shard=\"{shard}\",code=\"{code}\"}} {count}");
        }
    }
    if let Some(bridge) = bridge {
        render_bridge(&mut out, bridge);
    }
    out
}

/// The cluster bridge's series (only when the hub has a bridge).
fn render_bridge(out: &mut String, bridge: &BridgeMetrics) {
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let series: [(&str, &str, &str, u64); 7] = [
        (
            "ringcast_bridge_connected",
            "gauge",
            "1 while the hub is connected to NATS.",
            u64::from(bridge.connected.load(Ordering::Relaxed)),
        ),
        ("ringcast_bridge_published_total", "counter", "Publishes handed to NATS.", get(&bridge.published)),
        (
            "ringcast_bridge_lost_total",
            "counter",
            "Publishes that could not be handed to NATS (disconnected, queue full, over the server's limit).",
            get(&bridge.lost),
        ),
        ("ringcast_bridge_received_total", "counter", "Messages from NATS delivered here.", get(&bridge.received)),
        (
            "ringcast_bridge_dropped_in_total",
            "counter",
            "Messages from NATS not delivered (payload not of its kind; client queue overflow events).",
            get(&bridge.dropped_in),
        ),
        ("ringcast_bridge_subjects", "gauge", "Topic subjects subscribed to on NATS.", get(&bridge.subjects)),
        ("ringcast_bridge_connects_total", "counter", "Connections to NATS established.", get(&bridge.connects)),
    ];
    for (name, kind, help, value) in series {
        series_header(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

fn series_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shard_gets_a_sample_and_closes_are_labelled() {
        let stats = [Stats::default(), Stats::default()];
        let hub = [ShardMetrics::default(), ShardMetrics::default()];
        ShardMetrics::bump(&hub[1].publishes, 3);
        hub[0].closed(1000);
        hub[0].closed(1000);
        hub[1].closed(1008);
        let topics = TopicCount::default();
        topics.changed("r:a", true);
        topics.changed("j:a", true);
        topics.changed("r:b", true);
        topics.changed("r:a", false);
        let text = render(&stats, &hub, &topics, None, Some(HistorySize { messages: 3, bytes: 700 }));
        assert!(text.contains("ringcast_hub_topics 2\n"), "a (its /ws form) and b");
        assert!(!text.contains("ringcast_bridge"));
        assert!(text.contains("ringcast_connections{shard=\"0\"} 0\nringcast_connections{shard=\"1\"} 0\n"));
        assert!(text.contains("ringcast_hub_publishes_total{shard=\"1\"} 3\n"));
        assert!(text.contains("ringcast_closes_total{shard=\"0\",code=\"1000\"} 2\n"));
        assert!(text.contains("ringcast_closes_total{shard=\"1\",code=\"1008\"} 1\n"));
        assert!(text.contains("# TYPE ringcast_bytes_sent_total counter\n"));
        assert!(
            text.contains("ringcast_hub_history_messages 3\n") && text.contains("ringcast_hub_history_bytes 700\n")
        );
        assert!(!render(&stats, &hub, &topics, None, None).contains("history"), "no history, no series");
    }
}

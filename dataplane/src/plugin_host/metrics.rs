//! Metrics of the plugin host, per PluginDeployment (`plugin` label: `namespace/name`).
//!
//! Families (registered into the dataplane's registry, served on `/metrics`):
//! - `mcp_plugin_calls_total{plugin,outcome}`: `ProcessMessage` calls and calls refused
//!   before the wire, by outcome: `ok`, `error` (the plugin answered a gRPC error),
//!   `unavailable` (not connected, not serving, or the connection broke), `circuit_open`,
//!   `timeout`, `protocol` (a reply that breaks the contract or an undeclared mutation),
//!   `config_refused`, `stage_not_declared`.
//! - `mcp_plugin_call_duration_seconds{plugin}`: time of calls that reached the wire,
//!   histogram.
//! - `mcp_plugin_phase{plugin,phase}`: 1 for the connection's current phase
//!   (`connecting`, `serving`, `notServing`, `circuitOpen`), 0 for the others.
//! - `mcp_plugin_restarts_total{plugin}`: restarts of supervised plugin processes
//!   (standalone).

use mcp_crds::dataplane::PluginPhase;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginOutcome {
    plugin: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginOnly {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginPhaseLabels {
    plugin: String,
    phase: &'static str,
}

/// The plugin host's metric families. Cloning shares the counters.
#[derive(Clone, Debug)]
pub struct PluginMetrics {
    calls: Family<PluginOutcome, Counter>,
    durations: Family<PluginOnly, Histogram, fn() -> Histogram>,
    phase: Family<PluginPhaseLabels, Gauge>,
    restarts: Family<PluginOnly, Counter>,
}

fn call_histogram() -> Histogram {
    // 50 µs .. ~30 s.
    Histogram::new(exponential_buckets(0.000_05, 3.0, 14))
}

const PHASES: [PluginPhase; 4] = [
    PluginPhase::Connecting,
    PluginPhase::Serving,
    PluginPhase::NotServing,
    PluginPhase::CircuitOpen,
];

/// The camelCase name of `phase`, as `GET /internal/v1/plugins` spells it.
pub fn phase_name(phase: PluginPhase) -> &'static str {
    match phase {
        PluginPhase::Connecting => "connecting",
        PluginPhase::Serving => "serving",
        PluginPhase::NotServing => "notServing",
        PluginPhase::CircuitOpen => "circuitOpen",
        PluginPhase::Suspended => "suspended",
    }
}

impl Default for PluginMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            durations: Family::new_with_constructor(call_histogram),
            phase: Family::default(),
            restarts: Family::default(),
        }
    }
}

impl PluginMetrics {
    /// Registers the families in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "mcp_plugin_calls",
            "Calls of external plugins, by outcome",
            self.calls.clone(),
        );
        registry.register(
            "mcp_plugin_call_duration_seconds",
            "Time of one external plugin call on the wire, seconds",
            self.durations.clone(),
        );
        registry.register(
            "mcp_plugin_phase",
            "Connection phase of each external plugin (1 = current)",
            self.phase.clone(),
        );
        registry.register(
            "mcp_plugin_restarts",
            "Restarts of supervised plugin processes",
            self.restarts.clone(),
        );
    }

    pub(crate) fn call(&self, plugin: &str, outcome: &'static str, seconds: Option<f64>) {
        self.calls
            .get_or_create(&PluginOutcome {
                plugin: plugin.to_owned(),
                outcome,
            })
            .inc();
        if let Some(s) = seconds {
            self.durations
                .get_or_create(&PluginOnly {
                    plugin: plugin.to_owned(),
                })
                .observe(s);
        }
    }

    pub(crate) fn phase(&self, plugin: &str, current: PluginPhase) {
        for p in PHASES {
            self.phase
                .get_or_create(&PluginPhaseLabels {
                    plugin: plugin.to_owned(),
                    phase: phase_name(p),
                })
                .set(i64::from(p == current));
        }
    }

    /// Drops the phase series of a removed plugin, so it does not linger as "serving".
    pub(crate) fn forget(&self, plugin: &str) {
        for p in PHASES {
            self.phase.remove(&PluginPhaseLabels {
                plugin: plugin.to_owned(),
                phase: phase_name(p),
            });
        }
    }

    pub(crate) fn restart(&self, plugin: &str) {
        self.restarts
            .get_or_create(&PluginOnly {
                plugin: plugin.to_owned(),
            })
            .inc();
    }
}

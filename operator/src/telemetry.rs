//! Prometheus metrics and the operator's HTTP endpoints (`/metrics`, `/healthz`, `/readyz`).
//!
//! Families (OpenMetrics text format), each labelled with `controller` (`tenant`, `mailbox`):
//! - `mcp_operator_reconciliations_total{controller,result}` (counter): finished
//!   reconciliations; `result` is `ok` or `error`.
//! - `mcp_operator_reconcile_errors_total{controller,reason}` (counter): failed
//!   reconciliations by error reason (the [`crate::error::Error::reason`] names, e.g.
//!   `KubeApi`, `DataplaneUnavailable`).
//! - `mcp_operator_reconcile_duration_seconds{controller}` (histogram): wall time of one
//!   reconciliation, seconds.
//! - `mcp_operator_leader` (gauge): 1 while this instance holds the leader Lease.
//! - `mcp_operator_api_requests_total{method,resource}` (counter): requests sent to the API
//!   server, by HTTP method (`GET`, `POST`, `PATCH`, `PUT`, `DELETE`; watches counted as
//!   `WATCH`) and resource (`tenants`, `mailboxes/status`, `leases`, ...). The writes are
//!   everything but `GET` and `WATCH`; at steady state only the Lease renewals remain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerResult {
    controller: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerReason {
    controller: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    method: String,
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerOnly {
    controller: String,
}

/// The operator's metrics; share it behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciliations: Family<ControllerResult, Counter>,
    errors: Family<ControllerReason, Counter>,
    durations: Family<ControllerOnly, Histogram, fn() -> Histogram>,
    leader: Gauge,
    api_requests: Family<Request, Counter>,
    ready: AtomicBool,
}

fn reconcile_histogram() -> Histogram {
    // 1 ms .. ~59 s.
    Histogram::new(exponential_buckets(0.001, 3.0, 11))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let reconciliations = Family::<ControllerResult, Counter>::default();
        let errors = Family::<ControllerReason, Counter>::default();
        let durations =
            Family::<ControllerOnly, Histogram, fn() -> Histogram>::new_with_constructor(
                reconcile_histogram,
            );
        let leader = Gauge::default();
        let api_requests = Family::<Request, Counter>::default();
        registry.register(
            "mcp_operator_api_requests",
            "Requests sent to the Kubernetes API server, by HTTP method (WATCH for watches) and resource",
            api_requests.clone(),
        );
        registry.register(
            "mcp_operator_reconciliations",
            "Finished reconciliations, by controller and result (ok, error)",
            reconciliations.clone(),
        );
        registry.register(
            "mcp_operator_reconcile_errors",
            "Failed reconciliations, by controller and error reason",
            errors.clone(),
        );
        registry.register(
            "mcp_operator_reconcile_duration_seconds",
            "Wall time of one reconciliation, seconds",
            durations.clone(),
        );
        registry.register(
            "mcp_operator_leader",
            "1 while this instance holds the leader Lease",
            leader.clone(),
        );
        Self {
            registry,
            reconciliations,
            errors,
            durations,
            leader,
            api_requests,
            ready: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    /// Records one finished reconciliation of `controller` that took `elapsed`; `error` is
    /// the error's reason when it failed.
    pub fn reconciled(&self, controller: &str, elapsed: Duration, error: Option<&str>) {
        let result = if error.is_some() { "error" } else { "ok" };
        self.reconciliations
            .get_or_create(&ControllerResult {
                controller: controller.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        if let Some(reason) = error {
            self.errors
                .get_or_create(&ControllerReason {
                    controller: controller.to_owned(),
                    reason: reason.to_owned(),
                })
                .inc();
        }
        self.durations
            .get_or_create(&ControllerOnly {
                controller: controller.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one API server request with `method` to `path`; a `GET` whose query has
    /// `watch=true` counts as `WATCH`.
    pub fn api_request(&self, method: &str, path: &str, query: Option<&str>) {
        let watch = method == "GET"
            && query.is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
        let method = if watch { "WATCH" } else { method };
        self.api_requests
            .get_or_create(&Request {
                method: method.to_owned(),
                resource: api_resource(path),
            })
            .inc();
    }

    /// Sets the leader gauge.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Marks the operator ready (`/readyz` answers 200): it reached the API server and its
    /// controllers run, or it is a standby waiting for the Lease.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// The metrics in OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The resource (and subresource) a request path names: `/api/v1/namespaces/n/secrets/s` is
/// `secrets`, `/apis/mcp.dev/v1alpha1/tenants/t/status` is `tenants/status`,
/// `/api/v1/namespaces/n` is `namespaces`; anything else (`/version`) is `other`.
fn api_resource(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return "other".to_owned(),
    };
    let (resource, tail) = match rest {
        ["namespaces", _ns, resource, tail @ ..] => (*resource, tail),
        [resource, tail @ ..] => (*resource, tail),
        [] => return "other".to_owned(),
    };
    match tail {
        [_name, sub, ..] => format!("{resource}/{sub}"),
        _ => resource.to_owned(),
    }
}

/// The HTTP router: `/metrics`, `/healthz` (the process runs) and `/readyz` (see
/// [`Metrics::set_ready`]).
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move {
                ([(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)], m.encode()).into_response()
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(m): State<Arc<Metrics>>| async move {
                if m.ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ok\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            }),
        )
        .with_state(metrics)
}

/// Serves [`router`] on `addr` until the process ends.
///
/// # Errors
/// The listener cannot be bound.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "metrics and health endpoints listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(metrics)).await {
            tracing::error!(error = %e, "metrics server failed");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_name_their_resource() {
        let cases = [
            ("/api/v1/namespaces/n/secrets/s", "secrets"),
            ("/api/v1/namespaces/n/secrets", "secrets"),
            ("/api/v1/namespaces/n", "namespaces"),
            ("/api/v1/namespaces", "namespaces"),
            ("/apis/mcp.dev/v1alpha1/tenants/t/status", "tenants/status"),
            (
                "/apis/mcp.dev/v1alpha1/namespaces/n/mailboxes/m/status",
                "mailboxes/status",
            ),
            (
                "/apis/coordination.k8s.io/v1/namespaces/s/leases/l",
                "leases",
            ),
            ("/apis/events.k8s.io/v1/namespaces/n/events", "events"),
            ("/version", "other"),
            ("/api/v1", "other"),
        ];
        for (path, want) in cases {
            assert_eq!(api_resource(path), want, "{path}");
        }
    }

    #[test]
    fn families_are_exposed_with_their_labels() {
        let m = Metrics::default();
        m.reconciled("tenant", Duration::from_millis(3), None);
        m.reconciled(
            "mailbox",
            Duration::from_millis(5),
            Some("DataplaneUnavailable"),
        );
        m.set_leader(true);
        m.api_request("PATCH", "/apis/mcp.dev/v1alpha1/tenants/acme/status", None);
        m.api_request("GET", "/api/v1/secrets", Some("labelSelector=x&watch=true"));
        let text = m.encode();
        for want in [
            r#"mcp_operator_reconciliations_total{controller="tenant",result="ok"} 1"#,
            r#"mcp_operator_reconciliations_total{controller="mailbox",result="error"} 1"#,
            r#"mcp_operator_reconcile_errors_total{controller="mailbox",reason="DataplaneUnavailable"} 1"#,
            r#"mcp_operator_reconcile_duration_seconds_count{controller="tenant"} 1"#,
            "mcp_operator_leader 1",
            r#"mcp_operator_api_requests_total{method="PATCH",resource="tenants/status"} 1"#,
            r#"mcp_operator_api_requests_total{method="WATCH",resource="secrets"} 1"#,
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
    }
}

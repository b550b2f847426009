//! Prometheus metrics of the built-in server (`GET /metrics`, any valid token): requests by
//! route and status, their latency, the objects it holds and the change feed's cursor.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// The server's metrics; the registry encodes them on a scrape.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    objects: Family<KindLabels, Gauge>,
    cursor: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("fabric_ipam");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 0.5 ms to about 16 s.
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            latency.clone(),
        );
        let objects = Family::<KindLabels, Gauge>::default();
        registry.register(
            "objects",
            "Objects held, by kind (address_space, subnet, range)",
            objects.clone(),
        );
        let cursor = Gauge::default();
        registry.register(
            "change_feed_cursor",
            "Sequence number of the latest change in the change feed",
            cursor.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            objects,
            cursor,
        }
    }
}

impl Metrics {
    /// Counts one answered request. `path` is reduced to its route, so ids do not make labels.
    pub fn observe(&self, method: &str, path: &str, status: u16, took: Duration) {
        let route = route_of(path);
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.clone(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
    }

    /// The text exposition, with the objects and cursor read just now.
    pub fn render(&self, objects: &[(&str, i64)], cursor: i64) -> String {
        for (kind, n) in objects {
            self.objects
                .get_or_create(&KindLabels {
                    kind: (*kind).to_string(),
                })
                .set(*n);
        }
        self.cursor.set(cursor);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The route a path matched: `/api/v1/subnets/<id>` → `/api/v1/subnets/{id}`; anything the
/// server does not serve is `other`, so a scanner cannot grow the label set.
pub fn route_of(path: &str) -> String {
    const RESOURCES: [&str; 3] = ["address-spaces", "subnets", "ranges"];
    const PLAIN: [&str; 7] = [
        "status", "time", "whoami", "audit", "batch", "snapshot", "changes",
    ];
    if path == "/metrics" {
        return path.to_string();
    }
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return "other".into();
    };
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        [one] if PLAIN.contains(one) || RESOURCES.contains(one) => format!("/api/v1/{one}"),
        [resource, _] if RESOURCES.contains(resource) => format!("/api/v1/{resource}/{{id}}"),
        _ => "other".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_routes_without_ids() {
        assert_eq!(route_of("/api/v1/subnets"), "/api/v1/subnets");
        assert_eq!(
            route_of("/api/v1/subnets/6f1c0d3e-1111-4a2b-9c3d-000000000001"),
            "/api/v1/subnets/{id}"
        );
        assert_eq!(route_of("/api/v1/changes"), "/api/v1/changes");
        assert_eq!(route_of("/metrics"), "/metrics");
        assert_eq!(route_of("/api/v1/nope/1/2"), "other");
        assert_eq!(route_of("/wp-login.php"), "other");
    }

    #[test]
    fn the_exposition_counts_requests_latency_objects_and_the_cursor() {
        let m = Metrics::default();
        m.observe("GET", "/api/v1/subnets/abc", 200, Duration::from_millis(3));
        m.observe("GET", "/api/v1/subnets/def", 200, Duration::from_millis(5));
        m.observe("POST", "/api/v1/batch", 422, Duration::from_millis(1));
        let text = m.render(&[("subnet", 12), ("range", 3)], 77);
        assert!(text.contains(
            "fabric_ipam_http_requests_total{method=\"GET\",route=\"/api/v1/subnets/{id}\",status=\"200\"} 2"
        ), "{text}");
        assert!(text.contains("status=\"422\"} 1"), "{text}");
        assert!(
            text.contains(
                "fabric_ipam_http_request_duration_seconds_count{route=\"/api/v1/batch\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("fabric_ipam_objects{kind=\"subnet\"} 12"),
            "{text}"
        );
        assert!(text.contains("fabric_ipam_change_feed_cursor 77"), "{text}");
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }
}

//! Nautobot's event broker: every create, update and delete of an IPAM object is published on
//! Redis Pub/Sub as `nautobot.<action>.ipam.<model>`. One subscription per Redis address serves
//! every service of the process; a service's listener asks it whether anything its scope reads
//! arrived since the service's last read.
//!
//! Pub/Sub drops what is published while nobody is subscribed, so each (re)subscription counts
//! as a change for every read made before it: the sync that follows is the catch-up read.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;

use crate::ipam::model::IpamId;
use crate::ipam::provider::ChangeWait;

/// The topics of the objects the mapping reads.
pub(super) const TOPICS: [&str; 3] = [
    "nautobot.*.ipam.namespace",
    "nautobot.*.ipam.prefix",
    "nautobot.*.ipam.ipaddressrange",
];
/// Events kept for listeners that were busy syncing when they arrived.
const KEPT: usize = 4096;
/// A subscription that does not answer a ping this often is taken as lost.
const PING_EVERY: Duration = Duration::from_secs(15);
const PING_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A subscription nobody asked about for this long is closed.
const IDLE_STOP: Duration = Duration::from_secs(600);

/// One event, as far as deciding whom it concerns.
#[derive(Debug, Clone)]
struct Event {
    /// Console clock when it arrived.
    at: DateTime<Utc>,
    /// The namespaces a prefix was in before and after; `None` when the event may concern any
    /// scope (a namespace, a range, a payload without them).
    namespaces: Option<Vec<String>>,
}

impl Event {
    fn concerns(&self, spaces: &BTreeSet<IpamId>) -> bool {
        match &self.namespaces {
            None => true,
            Some(ns) => spaces.is_empty() || ns.iter().any(|n| spaces.contains(n.as_str())),
        }
    }
}

/// What one Redis subscription knows, shared with every listener.
#[derive(Debug, Clone, Default)]
struct FeedState {
    /// Console clock when the present subscription was made; `None` while there is none.
    subscribed_at: Option<DateTime<Utc>>,
    /// Why there is no subscription, after a failed or lost one.
    error: Option<String>,
    /// The first attempt has ended.
    tried: bool,
    /// Latest events, oldest first.
    recent: VecDeque<Event>,
    /// Events up to this time were dropped from `recent`.
    forgotten_until: Option<DateTime<Utc>>,
}

impl FeedState {
    fn push(&mut self, event: Event) {
        if self.recent.len() >= KEPT
            && let Some(old) = self.recent.pop_front()
        {
            self.forgotten_until = Some(old.at);
        }
        self.recent.push_back(event);
    }

    /// The answer for a listener whose last read began at `since`, or `None` to keep waiting.
    fn verdict(
        &self,
        since: Option<DateTime<Utc>>,
        spaces: &BTreeSet<IpamId>,
    ) -> Option<Result<ChangeWait, String>> {
        let Some(subscribed_at) = self.subscribed_at else {
            return self.tried.then(|| {
                Err(self
                    .error
                    .clone()
                    .unwrap_or_else(|| "not subscribed".into()))
            });
        };
        let Some(since) = since else {
            return Some(Ok(ChangeWait::Changed));
        };
        let changed = subscribed_at > since
            || self.forgotten_until.is_some_and(|f| f > since)
            || self
                .recent
                .iter()
                .rev()
                .take_while(|e| e.at > since)
                .any(|e| e.concerns(spaces));
        changed.then_some(Ok(ChangeWait::Changed))
    }
}

/// The subscription to one Redis address.
pub(super) struct Feed {
    url: String,
    state: watch::Receiver<FeedState>,
    last_used: Mutex<Instant>,
}

static FEEDS: LazyLock<Mutex<HashMap<String, Arc<Feed>>>> = LazyLock::new(Default::default);

/// The process's subscription to `url`, started when there is none (or its task ended, e.g.
/// with the runtime that ran it).
pub(super) fn feed(url: &str) -> Arc<Feed> {
    let mut feeds = FEEDS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = feeds.get(url)
        && f.state.has_changed().is_ok()
    {
        return f.clone();
    }
    let (tx, rx) = watch::channel(FeedState::default());
    let feed = Arc::new(Feed {
        url: url.to_string(),
        state: rx,
        last_used: Mutex::new(Instant::now()),
    });
    tokio::spawn(run(url.to_string(), tx, Arc::downgrade(&feed)));
    feeds.insert(url.to_string(), feed.clone());
    feed
}

/// Whether the process's live subscription to `url` (one made before `since`) has heard no
/// event concerning `spaces` after `since`. `false` when there is no such subscription.
pub(super) fn heard_nothing_since(
    url: &str,
    since: DateTime<Utc>,
    spaces: &BTreeSet<IpamId>,
) -> bool {
    let feeds = FEEDS.lock().unwrap_or_else(|p| p.into_inner());
    let Some(feed) = feeds.get(url) else {
        return false;
    };
    let state = feed.state.borrow();
    state.subscribed_at.is_some() && state.verdict(Some(since), spaces).is_none()
}

impl Feed {
    /// Waits up to `timeout` for an event that concerns `spaces` (the namespaces of the
    /// listener's scope) after `since` (when its last read began, console clock). `Err` says
    /// why nothing can be listened to now.
    pub(super) async fn wait(
        &self,
        since: Option<DateTime<Utc>>,
        spaces: &BTreeSet<IpamId>,
        timeout: Duration,
    ) -> Result<ChangeWait, String> {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let mut rx = self.state.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(answer) = rx.borrow_and_update().verdict(since, spaces) {
                return answer;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Err(_) => return Ok(ChangeWait::Quiet),
                Ok(Err(_)) => return Err("the subscription ended".into()),
                Ok(Ok(())) => {}
            }
        }
    }

    fn idle(&self) -> bool {
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
            > IDLE_STOP
    }
}

/// The longest wait between two attempts to subscribe.
const RECONNECT_MAX: Duration = Duration::from_secs(15);

/// Keeps one subscription up: subscribes, records events, pings, and subscribes again after a
/// loss (backing off while Redis cannot be reached). Ends when nobody asked for a while.
async fn run(url: String, tx: watch::Sender<FeedState>, feed: Weak<Feed>) {
    // 0.5 s, doubling up to 15 s; a subscription that held starts over.
    let reconnect = || {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(RECONNECT_MAX)
            .without_max_times()
            .build()
    };
    let mut delays = reconnect();
    let mut failures: u32 = 0;
    loop {
        match subscribe(&url).await {
            Ok(pubsub) => {
                failures = 0;
                delays = reconnect();
                tracing::info!(source = %url, "listening for IPAM change events");
                tx.send_modify(|s| {
                    s.subscribed_at = Some(Utc::now());
                    s.error = None;
                    s.tried = true;
                });
                let why = follow(pubsub, &tx, &feed).await;
                tracing::warn!(source = %url, reason = %why, "IPAM change events: subscription lost");
                tx.send_modify(|s| {
                    s.subscribed_at = None;
                    s.error = Some(format!("the subscription was lost ({why})"));
                });
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(source = %url, error = %e, "IPAM change events: cannot subscribe");
                }
                tx.send_modify(|s| {
                    s.subscribed_at = None;
                    s.error = Some(e);
                    s.tried = true;
                });
            }
        }
        if stop_if_idle(&url, &feed) {
            return;
        }
        tokio::time::sleep(delays.next().unwrap_or(RECONNECT_MAX)).await;
    }
}

/// Records events until the subscription is lost or idle; says why it ended.
async fn follow(
    pubsub: redis::aio::PubSub,
    tx: &watch::Sender<FeedState>,
    feed: &Weak<Feed>,
) -> String {
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(m) => {
                    let event = event_of(m.get_channel_name(), m.get_payload_bytes());
                    tx.send_modify(|s| s.push(event));
                }
                None => return "the connection closed".into(),
            },
            _ = ping.tick() => {
                if feed.upgrade().is_none_or(|f| f.idle()) {
                    return "nobody listens".into();
                }
                match tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => return format!("no answer to a ping within {} s", PING_TIMEOUT.as_secs()),
                }
            }
        }
    }
}

fn stop_if_idle(url: &str, feed: &Weak<Feed>) -> bool {
    let Some(f) = feed.upgrade() else {
        return true;
    };
    if !f.idle() {
        return false;
    }
    let mut feeds = FEEDS.lock().unwrap_or_else(|p| p.into_inner());
    if feeds.get(url).is_some_and(|g| Arc::ptr_eq(g, &f)) {
        feeds.remove(url);
    }
    tracing::info!(source = %f.url, "IPAM change events: nobody listens, subscription closed");
    true
}

async fn subscribe(url: &str) -> Result<redis::aio::PubSub, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(CONNECT_TIMEOUT, pubsub.psubscribe(&TOPICS))
        .await
        .map_err(|_| {
            format!(
                "no answer to PSUBSCRIBE within {} s",
                CONNECT_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| e.to_string())?;
    Ok(pubsub)
}

/// Runs `work` with a subscription of its own to `url` (the Test page's), counting the events
/// whose payload holds `marker` that arrive meanwhile or within a moment after.
pub(super) async fn events_during<T>(
    url: &str,
    marker: &str,
    work: impl Future<Output = T>,
) -> (T, Result<usize, String>) {
    let pubsub = match subscribe(url).await {
        Ok(p) => p,
        Err(e) => return (work.await, Err(e)),
    };
    let mut stream = pubsub.into_on_message();
    let mut seen = 0usize;
    let mut tally = |m: redis::Msg| {
        if String::from_utf8_lossy(m.get_payload_bytes()).contains(marker) {
            seen += 1;
        }
    };
    tokio::pin!(work);
    let out = loop {
        tokio::select! {
            out = &mut work => break out,
            Some(m) = stream.next() => tally(m),
        }
    };
    // Nautobot publishes as each request ends: the last events may still be on their way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, stream.next()).await {
        tally(m);
    }
    (out, Ok(seen))
}

/// What an event says about whom it concerns: a prefix names its namespace before and after.
fn event_of(topic: &str, payload: &[u8]) -> Event {
    let at = Utc::now();
    if !topic.ends_with(".ipam.prefix") {
        return Event {
            at,
            namespaces: None,
        };
    }
    let namespaces = serde_json::from_slice::<Value>(payload).ok().and_then(|v| {
        let ns: Vec<String> = ["prechange", "postchange"]
            .iter()
            .filter_map(|side| v.get(side)?.get("namespace"))
            .filter_map(|n| match n {
                Value::String(s) => Some(s.clone()),
                Value::Object(m) => m.get("id")?.as_str().map(str::to_string),
                _ => None,
            })
            .collect();
        (!ns.is_empty()).then_some(ns)
    });
    Event { at, namespaces }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn spaces(ids: &[&str]) -> BTreeSet<IpamId> {
        ids.iter().map(|s| IpamId::from(*s)).collect()
    }

    #[test]
    fn a_prefix_event_names_its_namespaces_and_others_concern_every_scope() {
        let payload = br#"{"prechange":{"namespace":{"id":"ns-a"}},"postchange":{"namespace":{"id":"ns-b"}}}"#;
        let e = event_of("nautobot.update.ipam.prefix", payload);
        assert_eq!(e.namespaces, Some(vec!["ns-a".into(), "ns-b".into()]));
        assert!(e.concerns(&spaces(&["ns-b"])));
        assert!(!e.concerns(&spaces(&["ns-c"])));
        let range = event_of("nautobot.create.ipam.ipaddressrange", b"{}");
        assert!(range.concerns(&spaces(&["ns-c"])));
        let garbled = event_of("nautobot.delete.ipam.prefix", b"not json");
        assert!(garbled.concerns(&spaces(&["ns-c"])));
    }

    #[test]
    fn a_read_before_the_subscription_or_an_event_after_it_is_a_change() {
        let scope = spaces(&["ns-a"]);
        let mut s = FeedState::default();
        assert_eq!(
            s.verdict(Some(at(0)), &scope),
            None,
            "first attempt under way"
        );
        s.tried = true;
        s.error = Some("connection refused".into());
        assert_eq!(
            s.verdict(Some(at(0)), &scope),
            Some(Err("connection refused".into()))
        );
        s.subscribed_at = Some(at(10));
        s.error = None;
        // A read before the subscription may have missed what was published meanwhile.
        assert_eq!(
            s.verdict(Some(at(5)), &scope),
            Some(Ok(ChangeWait::Changed))
        );
        assert_eq!(s.verdict(None, &scope), Some(Ok(ChangeWait::Changed)));
        assert_eq!(s.verdict(Some(at(20)), &scope), None);
        s.push(Event {
            at: at(30),
            namespaces: Some(vec!["ns-other".into()]),
        });
        assert_eq!(
            s.verdict(Some(at(20)), &scope),
            None,
            "another scope's prefix"
        );
        s.push(Event {
            at: at(31),
            namespaces: Some(vec!["ns-a".into()]),
        });
        assert_eq!(
            s.verdict(Some(at(20)), &scope),
            Some(Ok(ChangeWait::Changed))
        );
        assert_eq!(s.verdict(Some(at(31)), &scope), None, "read after it");
    }

    #[test]
    fn events_dropped_from_the_window_count_as_changes() {
        let scope = spaces(&["ns-a"]);
        let mut s = FeedState {
            subscribed_at: Some(at(0)),
            tried: true,
            ..Default::default()
        };
        for i in 0..=KEPT as i64 {
            s.push(Event {
                at: at(10 + i),
                namespaces: Some(vec!["ns-other".into()]),
            });
        }
        assert_eq!(s.recent.len(), KEPT);
        assert_eq!(
            s.verdict(Some(at(5)), &scope),
            Some(Ok(ChangeWait::Changed))
        );
        assert_eq!(s.verdict(Some(at(11)), &scope), None);
    }
}

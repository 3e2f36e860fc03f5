//! async-nats helpers: a subscription known to be in force before anything is published
//! to it (async-nats's `flush()` sends no PING, so a probe round trip proves it).

use std::time::{Duration, Instant};

use futures::StreamExt;

use super::WAIT;

/// Subscribes `subscriber` to `subject` and returns once `publisher`'s probes on it
/// arrive: the subscription is then in force for `publisher` (on every shard). Probes
/// still on their way are drained.
pub async fn subscribe_visible(
    publisher: &async_nats::Client,
    subscriber: &async_nats::Client,
    subject: &str,
) -> async_nats::Subscriber {
    let mut sub = subscriber
        .subscribe(subject.to_string())
        .await
        .expect("subscribe");
    let deadline = Instant::now() + WAIT;
    loop {
        publisher
            .publish(subject.to_string(), "probe".into())
            .await
            .expect("probe");
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(50), sub.next()).await {
            assert_eq!(m.payload, "probe");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a subscription to {subject} never became visible within {WAIT:?}"
        );
    }
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {}
    sub
}

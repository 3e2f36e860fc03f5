//! History over real TCP, against servers of two shards: the last messages of a channel
//! replayed after 366 to people joining on either shard (with `@time=` tags for clients
//! that took server-time, the time in the text for the others), the same history for
//! NATS clients from `$SC.HISTORY.<subject>`, subjects kept by configured patterns, and
//! the per-subject bound.

mod common;

use std::time::{Duration, Instant};

use common::irc::{runtime, start, subscribed, two_on_different_shards, Irc};
use common::WAIT;

/// The `$SC.HISTORY` answer for `subject`, asked until it holds `n` messages.
async fn history_with(
    nats: &async_nats::Client,
    subject: &str,
    n: usize,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = tokio::time::timeout(
            WAIT,
            nats.request(format!("$SC.HISTORY.{subject}"), "".into()),
        )
        .await
        .expect("an answer in time")
        .expect("an answer");
        let entries: Vec<serde_json::Value> =
            serde_json::from_slice(&reply.payload).expect("a JSON array");
        if entries.len() >= n {
            return entries;
        }
        assert!(
            Instant::now() < deadline,
            "history of {subject} never held {n}: {entries:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The lines after 366 for `channel` that carry `PRIVMSG`, until `n` of them.
fn replayed(c: &mut Irc, channel: &str, n: usize) -> Vec<String> {
    c.expect(" 366 ");
    (0..n)
        .map(|_| c.expect(&format!(" PRIVMSG {channel} :")))
        .collect()
}

#[test]
fn joiners_on_either_shard_see_the_last_messages_and_nats_clients_can_ask_for_them() {
    let (s, addr) = start("");
    let (mut alice, mut bob) = two_on_different_shards(&s, addr);
    let bob_nick = bob.nick();
    alice.send("JOIN #room.hist");
    alice.expect(" 366 alice #room.hist ");
    let rt = runtime();
    let entries = rt.block_on(async {
        let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
        subscribed(&nats).await;
        // Nothing kept yet: an empty array, not silence.
        let empty = history_with(&nats, "room.hist", 0).await;
        assert!(empty.is_empty(), "{empty:?}");
        for text in ["first from nats", "second from nats"] {
            nats.publish("room.hist", text.into())
                .await
                .expect("publish");
        }
        nats.flush().await.expect("flush");
        alice.expect("second from nats");
        alice.send("PRIVMSG #room.hist :alice was here");
        history_with(&nats, "room.hist", 3).await
    });
    // NATS clients get the history as a JSON array, oldest first.
    let texts: Vec<&str> = entries
        .iter()
        .map(|e| e["payload"].as_str().expect("text payload"))
        .collect();
    assert_eq!(
        texts,
        ["first from nats", "second from nats", "alice was here"]
    );
    assert_eq!(entries[2]["nick"], "alice");
    assert_eq!(entries[2]["mask"], "alice!~alice@127.0.0.1");
    assert!(entries[0].get("nick").is_none(), "{}", entries[0]);
    assert!(
        entries
            .iter()
            .all(|e| e["subject"] == "room.hist"
                && e["ts"].as_str().is_some_and(|t| t.ends_with('Z')))
    );
    // Bob (the other shard, no server-time) gets the time in the text, after 366.
    bob.send("JOIN #room.hist");
    let lines = replayed(&mut bob, "#room.hist", 3);
    let time = |i: usize| &entries[i]["ts"].as_str().expect("ts")[11..19];
    assert_eq!(
        lines,
        [
            format!(
                ":nats!nats@nats.shardcast PRIVMSG #room.hist :[{}] first from nats",
                time(0)
            ),
            format!(
                ":nats!nats@nats.shardcast PRIVMSG #room.hist :[{}] second from nats",
                time(1)
            ),
            format!(
                ":alice!~alice@127.0.0.1 PRIVMSG #room.hist :[{}] alice was here",
                time(2)
            ),
        ]
    );
    // Carol took server-time: the original times ride in @time= tags.
    let mut carol = Irc::connect(addr);
    carol.send("CAP LS 302");
    carol.send("NICK carol");
    carol.send("USER carol 0 * :Carol");
    carol.send("CAP REQ :server-time");
    carol.expect("ACK :server-time");
    carol.send("CAP END");
    carol.expect(" 422 carol ");
    carol.send("JOIN #room.hist");
    let lines = replayed(&mut carol, "#room.hist", 3);
    assert_eq!(
        lines[2],
        format!(
            "@time={} :alice!~alice@127.0.0.1 PRIVMSG #room.hist :alice was here",
            entries[2]["ts"].as_str().expect("ts")
        )
    );
    // Live lines after the replay carry no tag.
    bob.send("PRIVMSG #room.hist :live now");
    assert_eq!(
        carol.expect("live now"),
        format!(":{bob_nick}!~{bob_nick}@127.0.0.1 PRIVMSG #room.hist :live now")
    );
}

#[test]
fn configured_subjects_are_kept_without_a_channel_and_each_keeps_its_last_n() {
    let (s, addr) = start("[history]\nmessages = 3\nsubjects = [\"logs.>\"]\n");
    let rt = runtime();
    rt.block_on(async {
        let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
        for i in 0..10 {
            nats.publish("logs.app", format!("line {i}").into())
                .await
                .expect("publish");
            nats.publish("other", format!("other {i}").into())
                .await
                .expect("publish");
        }
        nats.publish("logs.bin", vec![0xff, 0x00, 0x01].into())
            .await
            .expect("publish");
        nats.flush().await.expect("flush");
        let entries = history_with(&nats, "logs.app", 3).await;
        let texts: Vec<&str> = entries
            .iter()
            .map(|e| e["payload"].as_str().expect("text"))
            .collect();
        // Only the last 3: the history service gets messages in order, so once the
        // last is there, the bound has dropped the rest.
        let deadline = Instant::now() + WAIT;
        let mut texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        while texts.last().map(String::as_str) != Some("line 9") {
            assert!(Instant::now() < deadline, "{texts:?}");
            texts = history_with(&nats, "logs.app", 3)
                .await
                .iter()
                .map(|e| e["payload"].as_str().expect("text").to_string())
                .collect();
        }
        assert_eq!(texts, ["line 7", "line 8", "line 9"]);
        // Binary payloads come in base64.
        let bin = history_with(&nats, "logs.bin", 1).await;
        assert_eq!(bin[0]["payload_base64"], "/wAB", "{}", bin[0]);
        // A subject no channel has and no pattern names is not kept.
        let other = history_with(&nats, "other", 0).await;
        assert!(other.is_empty(), "{other:?}");
    });
    // An IRC join to a kept subject replays it too.
    let mut dave = Irc::register(addr, "dave");
    dave.send("JOIN #logs.app");
    let lines = replayed(&mut dave, "#logs.app", 3);
    assert!(lines[2].ends_with("] line 9"), "{lines:?}");
    assert!(lines[0].ends_with("] line 7"), "{lines:?}");
}

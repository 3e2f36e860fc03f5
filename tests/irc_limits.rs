//! The IRC front-end's limits over real TCP, against servers of two shards: a flood is
//! delayed, then cut off; a client that cannot keep up is closed as a slow consumer and
//! the others see it quit at once.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::irc::{names_until, runtime, start, subscribed, two_on_different_shards, Irc};
use common::WAIT;

#[test]
fn a_flood_is_delayed_then_cut_off_with_excess_flood() {
    let (s, addr) = start("flood_lines_per_sec = 50\nflood_burst = 5\nflood_max_queued = 40\n");
    let (mut alice, mut bob) = two_on_different_shards(&s, addr);
    alice.send("JOIN #f");
    alice.expect(" 366 alice #f ");
    bob.send("JOIN #f");
    bob.expect(" 366 ");
    names_until(&mut alice, "#f", &["alice"]);
    // 30 lines at once: 5 go through, the rest are delayed, all arrive in order.
    let lines: String = (0..30)
        .map(|i| format!("PRIVMSG #f :line {i}\r\n"))
        .collect();
    alice.stream.write_all(lines.as_bytes()).expect("send");
    for i in 0..30 {
        let got = bob.expect("PRIVMSG #f :line ");
        assert!(got.ends_with(&format!(":line {i}")), "{got} for {i}");
    }
    // 100 at once: more than 40 waiting, so the connection is closed.
    let lines: String = (0..100)
        .map(|i| format!("PRIVMSG #f :more {i}\r\n"))
        .collect();
    alice.stream.write_all(lines.as_bytes()).expect("send");
    alice.expect("ERROR :Closing Link: (Excess Flood)");
    let quit = bob.expect("QUIT");
    assert_eq!(quit, ":alice!~alice@127.0.0.1 QUIT :Excess Flood");
    let (_, log) = s.terminate();
    let stopped = log
        .iter()
        .find(|l| l.contains("shardcast stopped"))
        .expect("stop line");
    let throttles: u64 = stopped
        .split_whitespace()
        .find_map(|w| w.strip_prefix("throttles="))
        .and_then(|v| v.parse().ok())
        .expect("throttles=");
    assert!(throttles > 0, "the flood was delayed: {stopped}");
    assert!(
        log.iter()
            .any(|l| l.contains("reason=\"excess_flood\"") || l.contains("reason=excess_flood")),
        "no excess_flood close in the log"
    );
}

#[test]
fn a_slow_client_is_closed_and_the_others_see_it_quit_at_once() {
    // Generous write deadline and grace: the others must see the QUIT when the server
    // closes the client, not when its writer gives up on it.
    let (s, addr) = start(
        "[limits]\nmax_pending = \"256KiB\"\nmax_payload = \"64KiB\"\n\
         stall_budget = \"0ms\"\nwrite_deadline = \"60s\"\n[shutdown]\ngrace = \"60s\"\n",
    );
    let (mut bob, _) = two_on_different_shards(&s, addr);
    // The slow client reads nothing, through a small receive buffer.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    socket.connect(&addr.into()).expect("connect");
    let mut slow = Irc::from_stream(socket.into());
    slow.send("NICK slow");
    slow.send("USER slow 0 * :slow");
    slow.expect(" 422 slow ");
    slow.send("JOIN #side,#firehose");
    slow.expect(" 366 slow #firehose ");
    bob.send("JOIN #side");
    bob.expect(" 366 ");
    names_until(&mut bob, "#side", &["slow"]);
    let rt = runtime();
    let event = rt.block_on(async {
        use futures::StreamExt;
        let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
        let mut presence = nats.subscribe("$SC.PRESENCE.firehose").await.expect("sub");
        subscribed(&nats).await;
        // 70,000 lines of 300 bytes: far more than the socket buffers and max_pending.
        let payload = bytes::Bytes::from(vec![b'x'; 300]);
        for _ in 0..70_000 {
            nats.publish("firehose", payload.clone())
                .await
                .expect("publish");
        }
        nats.flush().await.expect("flush");
        loop {
            let m = tokio::time::timeout(WAIT, presence.next())
                .await
                .expect("a quit event in time, while the slow client has read nothing")
                .expect("event");
            let event: serde_json::Value = serde_json::from_slice(&m.payload).expect("json");
            if event["event"] == "quit" {
                break event;
            }
        }
    });
    assert_eq!(event["nick"], "slow", "{event}");
    assert_eq!(event["reason"], "Slow consumer", "{event}");
    assert_eq!(
        bob.expect(" QUIT "),
        ":slow!~slow@127.0.0.1 QUIT :Slow consumer"
    );
    // What the slow client finally reads ends with the server's farewell, after
    // whatever part of its backlog was already in the socket buffers.
    let mut rest = Vec::new();
    slow.stream.set_read_timeout(Some(WAIT)).expect("timeout");
    slow.stream.read_to_end(&mut rest).expect("read to the end");
    let text = String::from_utf8_lossy(&rest);
    let last = text.trim_end().lines().last().unwrap_or("");
    assert_eq!(last, "ERROR :Closing Link: 127.0.0.1 (Slow consumer)");
    let (_, log) = s.terminate();
    assert!(
        log.iter()
            .any(|l| l.contains("slow consumer closed") && l.contains("max_pending")),
        "no slow consumer line in the log"
    );
}

#[test]
fn a_full_channel_refuses_the_next_member_with_471() {
    let (s, addr) = start("max_members_per_channel = 2\n");
    let (mut alice, mut bob) = two_on_different_shards(&s, addr);
    alice.send("JOIN #small");
    alice.expect(" 366 alice #small ");
    bob.send("JOIN #small");
    bob.expect(" 366 ");
    let mut carol = Irc::register(addr, "carol");
    // Once carol's shard counts both members, the channel is full for her.
    names_until(&mut carol, "#small", &["alice"]);
    let bob_nick = bob.nick();
    names_until(&mut carol, "#small", &[&bob_nick]);
    carol.send("JOIN #small");
    assert_eq!(
        carol.expect(" 471 "),
        ":shardcast 471 carol #small :Cannot join channel (+l)"
    );
    // A member leaves: there is room again (once carol's shard has seen the part).
    bob.send("PART #small");
    bob.expect(" PART ");
    let deadline = Instant::now() + WAIT;
    loop {
        carol.seen.clear();
        carol.send("JOIN #small");
        let answer = loop {
            let line = carol.next_line(WAIT).expect("an answer to JOIN");
            if line.contains(" JOIN #small") || line.contains(" 471 carol #small ") {
                break line;
            }
        };
        if answer.contains(" JOIN ") {
            break;
        }
        assert!(Instant::now() < deadline, "never room again");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_connection_that_does_not_register_in_time_is_closed() {
    let (_s, addr) = start("registration_timeout = \"1s\"\n");
    let mut lurker = Irc::connect(addr);
    lurker.send("NICK lurker");
    // No USER: registration never completes.
    assert_eq!(
        lurker.expect("ERROR"),
        "ERROR :Closing Link: (Registration timeout)"
    );
    assert_eq!(lurker.next_line(WAIT), None, "closed after the ERROR");
}

#[test]
fn an_idle_user_is_closed_and_the_others_see_why() {
    let (s, addr) = start("idle_timeout = \"2s\"\n");
    let rt = runtime();
    let nats = rt.block_on(async {
        let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
        let presence = nats.subscribe("$SC.PRESENCE.quiet").await.expect("sub");
        subscribed(&nats).await;
        (nats, presence)
    });
    let mut bob = Irc::register(addr, "bob");
    bob.send("JOIN #quiet");
    bob.expect(" 366 bob #quiet ");
    // Keepalive and queries do not count as activity.
    let started = Instant::now();
    let error = loop {
        bob.send("PING :still-here");
        if let Some(line) = bob.next_line(Duration::from_millis(300)) {
            if line.starts_with("ERROR") {
                break line;
            }
        }
        assert!(started.elapsed() < WAIT, "never closed for idling");
    };
    assert_eq!(error, "ERROR :Closing Link: (Idle timeout)");
    let (nats, mut presence) = nats;
    let quit = rt.block_on(async {
        use futures::StreamExt;
        loop {
            let m = tokio::time::timeout(WAIT, presence.next())
                .await
                .expect("quit event in time")
                .expect("event");
            let event: serde_json::Value = serde_json::from_slice(&m.payload).expect("json");
            if event["event"] == "quit" {
                break event;
            }
        }
    });
    assert_eq!(quit["nick"], "bob");
    assert_eq!(quit["reason"], "Idle timeout");
    // async-nats unsubscribes from a tokio task: drop the NATS side in the runtime.
    let _in_runtime = rt.enter();
    drop((presence, nats));
}

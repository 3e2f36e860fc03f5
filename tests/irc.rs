//! The IRC front-end over real TCP, against servers of two shards: registration (with and
//! without CAP), the error numerics, channels and presence between people on different
//! shards, and the bridge to NATS both ways with async-nats.

mod common;

use std::time::{Duration, Instant};

use common::irc::{
    names_until, runtime, shard_of, start, subscribed, two_on_different_shards, Irc,
};
use common::WAIT;

#[test]
fn registration_without_cap_gets_the_welcome_burst() {
    let (_s, addr) = start("");
    let mut c = Irc::connect(addr);
    c.send("NICK alice");
    c.send("USER alice 0 * :Alice A");
    for code in ["001", "002", "003", "004", "005", "422"] {
        let line = c.expect(&format!(" {code} alice"));
        assert!(line.starts_with(":shardcast "), "{line}");
    }
    assert!(c.seen.is_empty(), "in order: {:?}", c.seen);
    let isupport = c.seen.join("");
    assert!(isupport.is_empty());
    c.send("PING :lag-check");
    assert_eq!(c.expect("PONG"), ":shardcast PONG shardcast :lag-check");
}

#[test]
fn cap_negotiation_holds_registration_until_cap_end() {
    let (_s, addr) = start("");
    let mut c = Irc::connect(addr);
    c.send("CAP LS 302");
    assert_eq!(c.expect("CAP"), ":shardcast CAP * LS :server-time");
    c.send("NICK carol");
    c.send("USER carol 0 * :Carol");
    c.send("CAP REQ :server-time");
    assert_eq!(c.expect("CAP"), ":shardcast CAP carol ACK :server-time");
    c.expect_none(" 001 ", Duration::from_millis(300));
    c.send("CAP REQ :multi-prefix");
    assert_eq!(c.expect("CAP"), ":shardcast CAP carol NAK :multi-prefix");
    c.send("CAP END");
    c.expect(" 001 carol ");
    let isupport = c.expect(" 005 carol ");
    for token in [
        "CASEMAPPING=ascii",
        "CHANTYPES=#",
        "NICKLEN=30",
        "PREFIX=(ov)@+",
    ] {
        assert!(isupport.contains(token), "{isupport}");
    }
    c.expect(" 422 carol ");
}

#[test]
fn every_failure_has_its_numeric() {
    let (_s, addr) = start("");
    let mut c = Irc::connect(addr);
    c.send("JOIN #early");
    assert_eq!(
        c.expect(" 451 "),
        ":shardcast 451 * :You have not registered"
    );
    c.send("USER x");
    c.expect(" 461 * USER :Not enough parameters");
    c.send("NICK bad,nick");
    c.expect(" 432 * bad,nick :Erroneous nickname");
    c.send("NICK nats");
    c.expect(" 433 * nats :Nickname is already in use");
    c.send("NICK");
    c.expect(" 431 * :No nickname given");
    c.send("NICK dave");
    c.send("USER dave 0 * :Dave");
    c.expect(" 422 dave ");
    c.send("FROB x");
    c.expect(" 421 dave FROB :Unknown command");
    c.send("JOIN #bad..name");
    c.expect(" 403 dave #bad..name :No such channel");
    c.send("JOIN #$SYS");
    c.expect(" 403 dave #$SYS :No such channel ($ subjects are reserved)");
    c.send("PRIVMSG #notjoined :hi");
    c.expect(" 404 dave #notjoined :Cannot send to channel (join it first)");
    c.send("PRIVMSG nobody :hi");
    c.expect(" 401 dave nobody :No such nick/channel");
    c.send("PRIVMSG");
    c.expect(" 411 dave :No recipient given (PRIVMSG)");
    c.send("PRIVMSG #x");
    c.expect(" 412 dave :No text to send");
    c.send("PART #never");
    c.expect(" 442 dave #never :You're not on that channel");
    c.send("USER again 0 * :x");
    c.expect(" 462 dave :You may not reregister");
    c.send(&format!("PRIVMSG #x :{}", "y".repeat(600)));
    c.expect(" 417 dave :Input line was too long");
    // Still usable after all that.
    c.send("PING :still-here");
    c.expect("still-here");
}

#[test]
fn people_on_two_shards_chat_and_see_each_other_come_and_go() {
    let (s, addr) = start("");
    let (mut alice, mut bob) = two_on_different_shards(&s, addr);
    let bob_nick = bob.nick();
    alice.send("JOIN #Room.Lobby");
    assert!(alice.expect("JOIN").ends_with(" JOIN #room.lobby"));
    let names = alice.expect(" 353 alice = #room.lobby :");
    assert!(
        names.contains("+nats") && names.contains("alice"),
        "{names}"
    );
    alice.expect(" 366 alice #room.lobby ");
    bob.send("JOIN #room.lobby");
    bob.expect(" 366 ");
    // Bob's join reaches alice over the rings.
    let join = alice.expect(&format!(":{bob_nick}!"));
    assert!(join.ends_with("JOIN #room.lobby"), "{join}");
    bob.send("PRIVMSG #room.lobby :hello from the other shard");
    let line = alice.expect("PRIVMSG #room.lobby");
    assert_eq!(
        line,
        format!(
            ":{bob_nick}!~{bob_nick}@127.0.0.1 PRIVMSG #room.lobby :hello from the other shard"
        )
    );
    // Not echoed to its author.
    bob.expect_none("hello from the other shard", Duration::from_millis(300));
    alice.send("PART #room.lobby :see you");
    alice.expect("PART #room.lobby :see you");
    let part = bob.expect("PART #room.lobby");
    assert_eq!(part, ":alice!~alice@127.0.0.1 PART #room.lobby :see you");
    alice.send("JOIN #room.lobby");
    bob.expect("JOIN #room.lobby");
    alice.send("QUIT :gone fishing");
    assert_eq!(
        alice.expect("ERROR"),
        "ERROR :Closing Link: 127.0.0.1 (Quit: gone fishing)"
    );
    assert_eq!(
        bob.expect("QUIT"),
        ":alice!~alice@127.0.0.1 QUIT :Quit: gone fishing"
    );
}

#[test]
fn direct_messages_reach_a_nick_on_another_shard() {
    let (s, addr) = start("");
    let (mut alice, mut bob) = two_on_different_shards(&s, addr);
    let bob_nick = bob.nick();
    alice.send(&format!("PRIVMSG {} :psst", bob_nick.to_uppercase()));
    assert_eq!(
        bob.expect("psst"),
        format!(":alice!~alice@127.0.0.1 PRIVMSG {bob_nick} :psst")
    );
    bob.send("NICK robert");
    bob.expect(":robert");
    alice.send("PRIVMSG robert :new name?");
    bob.expect("PRIVMSG robert :new name?");
    alice.send(&format!("PRIVMSG {bob_nick} :old name"));
    alice.expect(&format!(" 401 alice {bob_nick} "));
}

#[test]
fn nats_and_irc_meet_on_one_subject() {
    let (s, addr) = start("");
    let rt = runtime();
    rt.block_on(async {
        use futures::StreamExt;
        let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
        let mut room = nats.subscribe("room.lobby").await.expect("sub");
        let mut presence = nats
            .subscribe("$SC.PRESENCE.room.lobby")
            .await
            .expect("sub");
        // The subscriptions are in force once a probe comes back through them (this
        // client's flush sends no PING, and blocking IRC reads keep it from running).
        subscribed(&nats).await;
        let mut alice = Irc::register(addr, "alice");
        alice.send("JOIN #room.lobby");
        alice.expect(" 366 ");
        let joined = tokio::time::timeout(WAIT, presence.next())
            .await
            .expect("presence in time")
            .expect("presence");
        let event: serde_json::Value = serde_json::from_slice(&joined.payload).expect("json");
        assert_eq!(event["event"], "join");
        assert_eq!(event["nick"], "alice");
        assert_eq!(event["channel"], "#room.lobby");
        // IRC → NATS: the text, with the author in a header.
        alice.send("PRIVMSG #room.lobby :hi nats");
        let msg = tokio::time::timeout(WAIT, room.next())
            .await
            .expect("in time")
            .expect("message");
        assert_eq!(&msg.payload[..], b"hi nats");
        let headers = msg.headers.expect("headers");
        assert_eq!(
            headers.get("Shardcast-Irc-Nick").map(|v| v.as_str()),
            Some("alice")
        );
        // NATS → IRC: from the pseudo-user, one PRIVMSG per line, binary summarised.
        nats.publish("room.lobby", "hello irc\nsecond line".into())
            .await
            .expect("pub");
        nats.publish("room.lobby", vec![0u8, 159, 146, 150].into())
            .await
            .expect("pub");
        nats.flush().await.expect("flush");
        assert_eq!(
            alice.expect("hello irc"),
            ":nats!nats@nats.shardcast PRIVMSG #room.lobby :hello irc"
        );
        alice.expect("PRIVMSG #room.lobby :second line");
        alice.expect("PRIVMSG #room.lobby :[binary 4 bytes]");
        // Upper-case subjects are not IRC's; aggregate channels show the subject.
        alice.send("JOIN #logs.*");
        alice.expect(" 366 alice #logs.* ");
        nats.publish("logs.Error", "hidden".into())
            .await
            .expect("pub");
        nats.publish("logs.error", "disk full".into())
            .await
            .expect("pub");
        nats.flush().await.expect("flush");
        assert_eq!(
            alice.expect("disk full"),
            ":nats!nats@nats.shardcast PRIVMSG #logs.* :[logs.error] disk full"
        );
        alice.send("PRIVMSG #logs.* :can I?");
        alice.expect(
            " 404 alice #logs.* :Cannot send to channel (aggregate channels are read-only)",
        );
        assert!(
            !alice.seen.iter().any(|l| l.contains("hidden")),
            "{:?}",
            alice.seen
        );
    });
}

#[test]
fn a_nick_taken_on_one_shard_is_taken_on_the_other() {
    let (s, addr) = start("");
    let (mut alice, bob) = two_on_different_shards(&s, addr);
    let bob_shard = shard_of(&s, bob.local_port());
    // A newcomer on bob's shard (connections spread by the kernel: try until one lands).
    let mut newcomer = loop {
        let c = Irc::connect(addr);
        if shard_of(&s, c.local_port()) == bob_shard {
            break c;
        }
    };
    newcomer.send("NICK ALICE");
    newcomer.send("USER x 0 * :x");
    // Taken (433), or, if the claim crossed alice's on its way, the owner shard keeps
    // the first and closes the other: either way alice keeps her nick.
    let answer = newcomer.expect(" ALICE ");
    if answer.contains(" 433 ") {
        assert_eq!(answer, ":shardcast 433 * ALICE :Nickname is already in use");
    } else {
        newcomer.expect("ERROR :Closing Link: 127.0.0.1 (Nick collision)");
    }
    alice.send("PING :still-alice");
    alice.expect("still-alice");
    // Once alice quits, the nick is free everywhere.
    alice.send("QUIT");
    alice.expect("ERROR");
    let deadline = Instant::now() + WAIT;
    loop {
        let mut again = Irc::connect(addr);
        again.send("NICK alice");
        again.send("USER a 0 * :a");
        let line = again.expect(" alice ");
        if line.contains(" 001 ") {
            break;
        }
        assert!(Instant::now() < deadline, "alice never freed: {line}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn names_who_and_members_cover_every_shard() {
    let (s, addr) = start("");
    let (mut alice, mut bob) = two_on_different_shards(&s, addr);
    let bob_nick = bob.nick();
    alice.send("JOIN #team");
    alice.expect(" 366 alice #team ");
    bob.send("JOIN #team");
    bob.expect(" 366 ");
    let names = names_until(&mut bob, "#team", &["alice", &bob_nick, "+nats"]);
    assert!(
        names.starts_with(&format!(":shardcast 353 {bob_nick} = #team :")),
        "{names}"
    );
    names_until(&mut alice, "#team", &["alice", &bob_nick]);
    bob.send("WHO #team");
    let who = bob.expect(" 352 ");
    let who2 = bob.expect(" 352 ");
    bob.expect(" 315 ");
    let both = format!("{who}\n{who2}");
    assert!(
        both.contains("#team ~alice 127.0.0.1 shardcast alice H :0 alice test"),
        "{both}"
    );
    let rt = runtime();
    rt.block_on(async {
        let nats = async_nats::connect(s.addr.to_string()).await.expect("nats");
        let reply = tokio::time::timeout(WAIT, nats.request("$SC.MEMBERS.team", "".into()))
            .await
            .expect("in time")
            .expect("reply");
        let members: serde_json::Value = serde_json::from_slice(&reply.payload).expect("json");
        let nicks: Vec<&str> = members
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|m| m["nick"].as_str())
            .collect();
        assert!(
            nicks.contains(&"alice") && nicks.contains(&bob_nick.as_str()),
            "{members}"
        );
        let alice_row = members
            .as_array()
            .expect("array")
            .iter()
            .find(|m| m["nick"] == "alice")
            .expect("alice");
        assert_eq!(alice_row["mask"], "alice!~alice@127.0.0.1");
    });
    // Leaving shows on every shard's copy too.
    alice.send("PART #team");
    let deadline = Instant::now() + WAIT;
    loop {
        bob.send("NAMES #team");
        let line = bob.expect(" 353 ");
        bob.expect(" 366 ");
        if !line.contains(" alice") {
            break;
        }
        assert!(Instant::now() < deadline, "alice still listed: {line}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_topic_set_on_one_shard_is_seen_on_the_other() {
    let (s, addr) = start("");
    let (mut alice, mut bob) = two_on_different_shards(&s, addr);
    let bob_nick = bob.nick();
    alice.send("JOIN #news");
    alice.expect(" 366 alice #news ");
    alice.send("TOPIC #news");
    alice.expect(" 331 alice #news :No topic is set");
    bob.send("TOPIC #news :not a member");
    bob.expect(&format!(" 442 {bob_nick} #news "));
    bob.send("JOIN #news");
    bob.expect(" 366 ");
    names_until(&mut alice, "#news", &[&bob_nick]);
    alice.send("TOPIC #news :today: shards");
    assert_eq!(
        alice.expect("TOPIC #news"),
        ":alice!~alice@127.0.0.1 TOPIC #news :today: shards"
    );
    assert_eq!(
        bob.expect("TOPIC #news"),
        ":alice!~alice@127.0.0.1 TOPIC #news :today: shards"
    );
    bob.send("TOPIC #news");
    assert_eq!(
        bob.expect(" 332 "),
        format!(":shardcast 332 {bob_nick} #news :today: shards")
    );
    let who_when = bob.expect(" 333 ");
    assert!(
        who_when.contains(&format!("333 {bob_nick} #news alice ")),
        "{who_when}"
    );
    // Someone joining later gets it with the names.
    let mut carol = Irc::register(addr, "carol");
    carol.send("JOIN #news");
    carol.expect(" 332 carol #news :today: shards");
    carol.expect(" 366 carol #news ");
    carol.send("LIST");
    carol.expect(" 322 carol #news 3 :today: shards");
}

#[test]
fn whois_userhost_and_ison_find_people_on_every_shard() {
    let (s, addr) = start("");
    let (mut alice, mut bob) = two_on_different_shards(&s, addr);
    let bob_nick = bob.nick();
    alice.send("JOIN #who");
    alice.expect(" 366 alice #who ");
    // Bob's shard learns of alice's channel a moment later.
    names_until(&mut bob, "#who", &["alice"]);
    bob.send("WHOIS alice");
    assert_eq!(
        bob.expect(" 311 "),
        format!(":shardcast 311 {bob_nick} alice ~alice 127.0.0.1 * :alice test")
    );
    assert_eq!(
        bob.expect(" 319 "),
        format!(":shardcast 319 {bob_nick} alice :#who")
    );
    bob.expect(" 312 ");
    bob.expect(&format!(" 318 {bob_nick} alice :End of /WHOIS list."));
    bob.send("WHOIS nobody");
    bob.expect(&format!(" 401 {bob_nick} nobody :No such nick/channel"));
    bob.expect(&format!(" 318 {bob_nick} nobody "));
    bob.send(&format!("USERHOST alice nobody {bob_nick}"));
    assert_eq!(
        bob.expect(" 302 "),
        format!(
            ":shardcast 302 {bob_nick} :alice=+~alice@127.0.0.1 {bob_nick}=+~{bob_nick}@127.0.0.1"
        )
    );
    bob.send("ISON :alice nobody ALICE");
    assert_eq!(
        bob.expect(" 303 "),
        format!(":shardcast 303 {bob_nick} :alice ALICE")
    );
    // A message to oneself comes straight back.
    alice.send("PRIVMSG alice :note to self");
    assert_eq!(
        alice.expect("note to self"),
        ":alice!~alice@127.0.0.1 PRIVMSG alice :note to self"
    );
}

//! IRC users log in with the server's users (SASL PLAIN or PASS) and their permissions
//! apply to the subjects their channels map to (JOIN subscribes, PRIVMSG publishes).

mod common;

use std::time::Duration;

use base64::Engine;
use common::irc::{start, Irc};

const USERS: &str = r#"
[[auth.users]]
user = "alice"
password = "wonder"
permissions = { publish = ["news"], subscribe = ["news", "$SC.>"] }
[[auth.users]]
user = "bob"
password = "builder"
"#;

fn plain(user: &str, pass: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}\0{user}\0{pass}"))
}

#[test]
fn sasl_plain_logs_in_and_a_wrong_password_may_retry() {
    let (_server, addr) = start(USERS);
    let mut c = Irc::connect(addr);
    c.send("CAP LS 302");
    c.expect("CAP * LS :server-time sasl=PLAIN");
    c.send("NICK al");
    c.send("USER al 0 * :Al");
    c.send("CAP REQ :sasl");
    c.expect("CAP al ACK :sasl");
    c.send("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.send(&format!("AUTHENTICATE {}", plain("alice", "nope")));
    c.expect(" 904 al :SASL authentication failed");
    c.send("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.send(&format!("AUTHENTICATE {}", plain("alice", "wonder")));
    let logged = c.expect(" 900 al ");
    assert!(
        logged.ends_with(":You are now logged in as alice"),
        "{logged}"
    );
    c.expect(" 903 al :SASL authentication successful");
    c.send("CAP END");
    c.expect(" 001 al ");
}

#[test]
fn pass_logs_in_as_user_colon_password_or_as_the_nick() {
    let (_server, addr) = start(USERS);
    let mut c = Irc::connect(addr);
    c.send("PASS bob:builder");
    c.send("NICK robert");
    c.send("USER r 0 * :R");
    c.expect(" 001 robert ");

    let mut c = Irc::connect(addr);
    c.send("PASS builder");
    c.send("NICK bob");
    c.send("USER b 0 * :B");
    c.expect(" 001 bob ");

    let mut c = Irc::connect(addr);
    c.send("PASS bob:wrong");
    c.send("NICK mallory");
    c.send("USER m 0 * :M");
    c.expect(" 464 mallory :Password incorrect");
    c.expect("ERROR :Closing Link: (Bad password)");
    assert!(c.next_line(Duration::from_secs(2)).is_none(), "closed");

    let mut c = Irc::connect(addr);
    c.send("NICK anon");
    c.send("USER a 0 * :A");
    c.expect(" 464 anon :Password incorrect");
}

#[test]
fn permissions_apply_to_channel_subjects() {
    let (_server, addr) = start(USERS);
    let mut alice = Irc::connect(addr);
    alice.send("PASS alice:wonder");
    alice.send("NICK alice");
    alice.send("USER a 0 * :A");
    alice.expect(" 001 alice ");
    alice.send("JOIN #secret");
    alice.expect(" 474 alice #secret :Cannot join channel (permission denied)");
    alice.send("JOIN #news");
    alice.expect(" 366 alice #news ");

    let mut bob = Irc::connect(addr);
    bob.send("PASS bob:builder");
    bob.send("NICK bob");
    bob.send("USER b 0 * :B");
    bob.expect(" 001 bob ");
    bob.send("JOIN #news,#other");
    bob.expect(" 366 bob #other ");
    alice.send("PRIVMSG #news :hello");
    bob.expect(":alice!~a@127.0.0.1 PRIVMSG #news :hello");
    alice.send("PRIVMSG bob :psst");
    alice.expect(" 404 alice bob :Cannot send to channel (permission denied)");
    bob.expect_none("psst", Duration::from_millis(300));
}

/// irssi, a real IRC client, logs in with SASL PLAIN as a person would set it up:
/// a network with SASL credentials, then `/connect`.
#[test]
fn irssi_logs_in_with_sasl() {
    let (server, addr) = start(USERS);
    let irssi = common::irssi::Irssi::start("alice", "Alice in irssi", None);
    irssi.type_line(
        "/network add -sasl_mechanism plain -sasl_username alice -sasl_password wonder shardnet",
    );
    irssi.type_line(&format!(
        "/server add -network shardnet 127.0.0.1 {}",
        addr.port()
    ));
    irssi.type_line("/connect shardnet");
    irssi.wait_for_line("the SASL success", |l| {
        l.contains("You are now logged in as alice") || l.contains("SASL authentication successful")
    });
    irssi.wait_registered("alice");
    // Its permissions apply: #news may be joined, #secret may not.
    // (474: irssi shows it in its own words.)
    irssi.type_line("/join #secret");
    irssi.wait_for_line("the refusal", |l| {
        l.contains("Cannot join to channel #secret")
    });
    irssi.type_line("/join #news");
    irssi.wait_for_line("the join", |l| {
        l.contains("alice") && l.contains("has joined #news")
    });
    drop(server);
}

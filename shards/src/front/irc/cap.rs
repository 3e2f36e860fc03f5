//! IRCv3 capability negotiation: `server-time` always, and `sasl` (PLAIN) when the server
//! has users to log in as (see [`super::login`]). Registration waits for `CAP END` once a
//! client has started negotiating.

use std::rc::Rc;

use crate::conn::Conn;
use crate::route::Router;

use super::IrcSession;

/// CAP LS / REQ / LIST / END.
pub fn cap(
    s: &mut IrcSession,
    router: &mut Router,
    conn: &Rc<Conn>,
    sub: Option<String>,
    arg: Option<String>,
) {
    let server = format!(":{}", s.settings().server_name);
    let who = s.target();
    match sub.map(|c| c.to_ascii_uppercase()).as_deref() {
        Some("LS") => {
            if !s.registered {
                s.cap_negotiating = true;
            }
            // SASL PLAIN is offered when there are credentials to check (with its
            // mechanism list for clients that speak CAP 302).
            let sasl = s.login.required();
            let caps = match (sasl, arg.as_deref()) {
                (false, _) => "server-time",
                (true, Some(v)) if v.parse::<u32>().is_ok_and(|v| v >= 302) => {
                    "server-time sasl=PLAIN"
                }
                (true, _) => "server-time sasl",
            };
            s.out.line(&[&server, "CAP", &who, "LS"], Some(caps));
        }
        Some("REQ") => {
            let asked = arg.unwrap_or_default();
            let sasl = s.login.required();
            let known = asked.split_whitespace().all(|c| {
                let c = c.trim_start_matches('-');
                c == "server-time" || (sasl && c == "sasl")
            });
            if known {
                for c in asked.split_whitespace() {
                    let on = !c.starts_with('-');
                    match c.trim_start_matches('-') {
                        "sasl" => s.login.sasl = on,
                        _ => s.server_time = on,
                    }
                }
                s.out.line(&[&server, "CAP", &who, "ACK"], Some(&asked));
            } else {
                s.out.line(&[&server, "CAP", &who, "NAK"], Some(&asked));
            }
        }
        Some("LIST") => {
            let enabled = match (s.server_time, s.login.sasl) {
                (true, true) => "server-time sasl",
                (true, false) => "server-time",
                (false, true) => "sasl",
                (false, false) => "",
            };
            s.out.line(&[&server, "CAP", &who, "LIST"], Some(enabled));
        }
        Some("END") => {
            s.cap_negotiating = false;
            s.try_register(conn, router);
        }
        other => {
            let other = other.unwrap_or_default();
            s.numeric("410", &[other], "Invalid CAP command");
        }
    }
}

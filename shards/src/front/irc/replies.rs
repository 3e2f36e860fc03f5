//! What the server says to an IRC client: numerics (`:server NNN nick params…`), the
//! registration burst, and lines from a user (`:nick!user@host COMMAND …`). Every line is
//! cut to the 512-byte limit on a character boundary. Numerics name the client's nick
//! as their first parameter (`*` before it has one): clients misbehave without it.

use crate::front::irc::line::LINE_BYTES_MAX;
use crate::front::irc::IrcSettings;

/// Lines queued for one client, in order; flushed into its outbox by the session.
#[derive(Debug, Default)]
pub struct Out {
    bytes: Vec<u8>,
}

impl Out {
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// One line: `parts` joined by spaces, the last one as a trailing parameter
    /// (`:text`) when `trailing` is set; cut to fit, CRLF added.
    pub fn line(&mut self, parts: &[&str], trailing: Option<&str>) {
        let start = self.bytes.len();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                self.bytes.push(b' ');
            }
            self.bytes.extend_from_slice(part.as_bytes());
        }
        if let Some(text) = trailing {
            self.bytes.extend_from_slice(b" :");
            // No line ends inside a parameter.
            let clean = text.replace(['\r', '\n', '\0'], " ");
            self.bytes.extend_from_slice(clean.as_bytes());
        }
        let max = start + LINE_BYTES_MAX - 2;
        if self.bytes.len() > max {
            let mut cut = max;
            // Back up to a character boundary (a UTF-8 continuation byte is 10xxxxxx).
            while cut > start && (self.bytes[cut] & 0xC0) == 0x80 {
                cut -= 1;
            }
            self.bytes.truncate(cut);
        }
        self.bytes.extend_from_slice(b"\r\n");
    }

    /// A numeric to `nick` from the server: `:server code nick params… [:trailing]`.
    pub fn numeric(
        &mut self,
        s: &IrcSettings,
        code: &str,
        nick: &str,
        params: &[&str],
        trailing: &str,
    ) {
        let source = format!(":{}", s.server_name);
        let mut parts = vec![source.as_str(), code, nick];
        parts.extend_from_slice(params);
        self.line(&parts, Some(trailing));
    }

    /// A numeric without a trailing parameter (`324 nick #c +nt`).
    pub fn numeric_bare(&mut self, s: &IrcSettings, code: &str, nick: &str, params: &[&str]) {
        let source = format!(":{}", s.server_name);
        let mut parts = vec![source.as_str(), code, nick];
        parts.extend_from_slice(params);
        self.line(&parts, None);
    }

    /// A command from a user: `:mask COMMAND params… [:trailing]`.
    pub fn from_user(
        &mut self,
        mask: &str,
        command: &str,
        params: &[&str],
        trailing: Option<&str>,
    ) {
        let source = format!(":{mask}");
        let mut parts = vec![source.as_str(), command];
        parts.extend_from_slice(params);
        self.line(&parts, trailing);
    }

    /// 001–005 and 422: what every client waits for after registering (hexchat joins
    /// its channels only after the end of the MOTD, or 422).
    pub fn welcome(&mut self, s: &IrcSettings, nick: &str, mask: &str) {
        let welcome = format!("Welcome to the {} IRC network {mask}", s.network);
        self.numeric(s, "001", nick, &[], &welcome);
        let host = format!(
            "Your host is {}, running version shardcast-{}",
            s.server_name,
            env!("CARGO_PKG_VERSION")
        );
        self.numeric(s, "002", nick, &[], &host);
        let created = format!("This server was created {}", s.created);
        self.numeric(s, "003", nick, &[], &created);
        let version = format!("shardcast-{}", env!("CARGO_PKG_VERSION"));
        self.numeric_bare(s, "004", nick, &[&s.server_name, &version, "i", "nt"]);
        let tokens = [
            format!("NETWORK={}", s.network),
            "CASEMAPPING=ascii".to_string(),
            "CHANTYPES=#".to_string(),
            "PREFIX=(ov)@+".to_string(),
            "CHANMODES=,,,nt".to_string(),
            format!("NICKLEN={}", s.nick_len_max),
            format!("CHANNELLEN={}", s.channel_len_max),
            format!("TOPICLEN={}", s.topic_len_max),
            format!("CHANLIMIT=#:{}", s.channels_per_user_max),
        ];
        let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
        self.numeric(s, "005", nick, &tokens, "are supported by this server");
        self.numeric(s, "422", nick, &[], "MOTD File is missing");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_to_512_bytes_on_a_character_boundary() {
        let mut out = Out::default();
        let long = "é".repeat(400);
        out.line(&[":a!b@c", "PRIVMSG", "#x"], Some(&long));
        let bytes = out.take();
        assert!(bytes.len() <= LINE_BYTES_MAX, "{}", bytes.len());
        assert!(bytes.ends_with(b"\r\n"));
        assert!(std::str::from_utf8(&bytes).is_ok());
        out.line(&["NOTICE", "x"], Some("two\r\nlines"));
        assert_eq!(out.take(), b"NOTICE x :two  lines\r\n");
    }

    #[test]
    fn numerics_name_the_nick() {
        let s = IrcSettings::default();
        let mut out = Out::default();
        out.numeric(&s, "451", "*", &[], "You have not registered");
        out.numeric_bare(&s, "324", "al", &["#c", "+nt"]);
        assert_eq!(
            String::from_utf8(out.take()).expect("utf8"),
            format!(
                ":{0} 451 * :You have not registered\r\n:{0} 324 al #c +nt\r\n",
                s.server_name
            )
        );
    }
}

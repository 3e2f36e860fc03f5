//! Owns the topology of a run: which connections exist, what each subscribes to, how many
//! messages each publisher sends and to which subject, and so how many each subscriber must
//! receive. Pure arithmetic, so the expected counts (and hence "lost") are testable.

use super::args::{BenchArgs, Scenario};

/// What one generator connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Publishes `count` messages (or until the deadline when `count` is None); message j of
    /// publisher p goes to subject (p + j) mod K.
    Publisher { index: usize, count: Option<u64> },
    /// Subscribes to one subject (in the queue group when `queue`) and counts deliveries.
    Subscriber {
        index: usize,
        subject: usize,
        queue: bool,
    },
    /// Subscribes like a subscriber, then never reads.
    Stalled { subject: usize },
    /// Sends `count` requests (or until the deadline), one at a time, and times each reply.
    Requester { index: usize, count: Option<u64> },
    /// Answers requests (one queue group of responders).
    Responder,
    /// Holds an idle subscribed connection.
    Idle { index: usize },
    /// An IRC client in the channel, counting and timing what is said there.
    IrcMember { index: usize },
    /// Says `count` lines in the channel (or until the deadline), over NATS or IRC.
    IrcPublisher { count: Option<u64> },
}

/// Every connection of a run, in start order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub roles: Vec<Role>,
    /// Subjects messages are spread over.
    pub subjects: usize,
    /// Publishers (or requesters).
    pub senders: usize,
    /// Subscribers (or requesters, who count their replies) whose deliveries are counted.
    pub receivers: usize,
}

impl Plan {
    /// The connections `args` asks for.
    pub fn new(args: &BenchArgs) -> Plan {
        let count = |p: usize| match args.duration {
            Some(_) => None,
            None => Some(share(args.msgs, args.pubs, p)),
        };
        let publishers = |roles: &mut Vec<Role>| {
            roles.extend((0..args.pubs).map(|index| Role::Publisher {
                index,
                count: count(index),
            }))
        };
        let subscribers = |roles: &mut Vec<Role>, queue: bool| {
            roles.extend((0..args.subs).map(|index| Role::Subscriber {
                index,
                subject: index % args.subjects,
                queue,
            }))
        };
        let mut roles = Vec::new();
        let (mut senders, mut receivers) = (args.pubs, args.subs);
        // Receivers subscribe (and stalled readers attach) before anyone publishes.
        match args.scenario {
            Scenario::Pub => {
                publishers(&mut roles);
                receivers = 0;
            }
            Scenario::Sub => {
                subscribers(&mut roles, false);
                senders = 0;
            }
            Scenario::Pubsub | Scenario::Latency | Scenario::Queue => {
                subscribers(&mut roles, args.scenario == Scenario::Queue);
                publishers(&mut roles);
            }
            Scenario::Reqrep => {
                roles.extend((0..args.subs).map(|_| Role::Responder));
                roles.extend((0..args.pubs).map(|index| Role::Requester {
                    index,
                    count: count(index),
                }));
                receivers = args.pubs;
            }
            Scenario::Irc => {
                roles.extend((0..args.subs).map(|index| Role::IrcMember { index }));
                roles.push(Role::IrcPublisher { count: count(0) });
                senders = 1;
            }
            Scenario::Conns => {
                roles.extend((0..args.subs).map(|index| Role::Idle { index }));
                senders = 0;
                receivers = 0;
            }
            // Its own runner (`logs_run`), not connection roles.
            Scenario::Logs => {
                senders = 0;
                receivers = 0;
            }
        }
        let subjects = if args.scenario == Scenario::Queue {
            1
        } else {
            args.subjects
        };
        roles.splice(
            0..0,
            (0..args.stalled).map(|i| Role::Stalled {
                subject: i % subjects,
            }),
        );
        Plan {
            roles,
            subjects,
            senders,
            receivers,
        }
    }
}

/// Publisher `p`'s share of `total` messages over `n` publishers (the first `total mod n` send one more).
pub fn share(total: u64, n: usize, p: usize) -> u64 {
    let n = n.max(1) as u64;
    let p = p as u64;
    total / n + u64::from(p < total % n)
}

/// How many of a publisher's first `sent` messages go to `subject`, when publisher `p`
/// sends message j to subject (p + j) mod `subjects`.
pub fn sent_to(subject: usize, p: usize, sent: u64, subjects: usize) -> u64 {
    let k = subjects.max(1) as u64;
    // Message j hits `subject` when j ≡ subject − p (mod k).
    let r = (subject as u64 + k - (p as u64 % k)) % k;
    sent / k + u64::from(r < sent % k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for total in [0, 1, 7, 100, 101] {
            for n in 1..5 {
                let sum: u64 = (0..n).map(|p| share(total, n, p)).sum();
                assert_eq!(sum, total, "{total} over {n}");
            }
        }
    }

    #[test]
    fn sent_to_matches_a_literal_count() {
        for k in 1..6 {
            for p in 0..4 {
                for sent in 0..20u64 {
                    for subject in 0..k {
                        let literal = (0..sent)
                            .filter(|j| (p as u64 + j) % k as u64 == subject as u64)
                            .count() as u64;
                        assert_eq!(sent_to(subject, p, sent, k), literal);
                    }
                }
            }
        }
    }
}

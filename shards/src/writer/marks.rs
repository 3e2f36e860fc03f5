//! Where deliveries end in an outbox's byte stream, and when they arrived, so that the
//! writer can time them when the kernel accepts their last byte: the end-to-end latency
//! (parsed on the publishing shard → accepted here) and the queue wait (appended here →
//! accepted), recorded per group with `record_n`.
//!
//! Every delivery a turn appends to one outbox shares that turn's times, so a turn adds at
//! most one mark per outbox. The queue of marks is bounded (`LATENCY_MARKS_MAX`): past it,
//! new deliveries join the newest mark and are timed from its (earlier) arrival, which can
//! only overstate their latency.

use std::collections::VecDeque;
use std::time::Instant;

use crate::limits::LATENCY_MARKS_MAX;
use crate::metrics::{Hist, Latency};

#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Bytes appended to the stream, up to and including these deliveries.
    end: u64,
    arrived: Instant,
    appended: Instant,
    msgs: u64,
}

/// The deliveries of one outbox not yet accepted by the kernel, by turn.
#[derive(Debug, Default)]
pub struct Marks {
    marks: VecDeque<Mark>,
}

impl Marks {
    /// `msgs` deliveries now end at byte `end` of the stream; the turn that appended them
    /// started at `appended` with messages parsed at `arrived`.
    pub fn note(&mut self, end: u64, arrived: Instant, appended: Instant, msgs: u64) {
        let full = self.marks.len() >= LATENCY_MARKS_MAX;
        if let Some(last) = self.marks.back_mut() {
            let same_turn = last.arrived == arrived && last.appended == appended;
            if same_turn || full {
                last.end = end;
                last.msgs += msgs;
                return;
            }
        }
        self.marks.push_back(Mark {
            end,
            arrived,
            appended,
            msgs,
        });
    }

    /// The stream is written up to byte `written` at `now`: records the deliveries that
    /// completed and returns how many there were.
    pub fn written(&mut self, written: u64, now: Instant, latency: &Latency) -> u64 {
        let mut done = 0;
        while let Some(m) = self.marks.front() {
            if m.end > written {
                break;
            }
            let e2e = now.saturating_duration_since(m.arrived);
            let wait = now.saturating_duration_since(m.appended);
            latency.record_duration(Hist::EndToEnd, e2e, m.msgs);
            latency.record_duration(Hist::QueueWait, wait, m.msgs);
            done += m.msgs;
            self.marks.pop_front();
        }
        done
    }

    /// The pending bytes were dropped (a slow consumer): nothing left to time.
    pub fn clear(&mut self) {
        self.marks.clear();
    }

    pub fn len(&self) -> usize {
        self.marks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn deliveries_are_timed_when_their_last_byte_is_written() {
        let latency = Latency::new(true);
        let mut marks = Marks::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        marks.note(100, t0, t0 + ms, 2);
        marks.note(150, t0, t0 + ms, 1); // the same turn: one mark
        marks.note(300, t0 + 2 * ms, t0 + 2 * ms, 4);
        assert_eq!(marks.len(), 2);
        assert_eq!(
            marks.written(149, t0 + 5 * ms, &latency),
            0,
            "the turn's last byte is not out"
        );
        assert_eq!(marks.written(150, t0 + 5 * ms, &latency), 3);
        let (e2e, _) = latency.copy(Hist::EndToEnd);
        assert_eq!(e2e.len(), 3);
        assert!(
            (4990..=5010).contains(&e2e.value_at_quantile(0.5)),
            "{}",
            e2e.value_at_quantile(0.5)
        );
        let (wait, _) = latency.copy(Hist::QueueWait);
        assert!((3990..=4010).contains(&wait.value_at_quantile(0.5)));
        assert_eq!(marks.written(1000, t0 + 6 * ms, &latency), 4);
        assert!(marks.is_empty());
    }

    #[test]
    fn the_queue_of_marks_is_bounded() {
        let latency = Latency::new(true);
        let mut marks = Marks::default();
        let t0 = Instant::now();
        for i in 0..(LATENCY_MARKS_MAX as u64 * 3) {
            let t = t0 + Duration::from_micros(i);
            marks.note(i + 1, t, t, 1);
        }
        assert_eq!(marks.len(), LATENCY_MARKS_MAX);
        let n = LATENCY_MARKS_MAX as u64 * 3;
        assert_eq!(
            marks.written(n, t0 + Duration::from_secs(1), &latency),
            n,
            "every delivery is counted"
        );
    }
}

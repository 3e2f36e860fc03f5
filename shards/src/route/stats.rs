//! What the router tells monitoring: its subscription index counters (`/subsz`), its
//! busiest subjects (`/channelz`), and one row per subscription.

use crate::limits::SNAPSHOT_SUBS_MAX;
use crate::metrics::{SubRow, SubjectStats, SublistStats};
use crate::route::Router;

impl Router {
    /// The subscription index counters.
    pub fn sublist_stats(&self) -> SublistStats {
        let (matches, cache_hits) = self.local.match_stats();
        SublistStats {
            subscriptions: self.local.len() as u64,
            cache_entries: self.local.cache_len() as u64,
            inserts: self.inserts,
            removes: self.removes,
            matches,
            cache_hits,
            max_fanout: self.fanout_max,
            fanout_total: self.fanout_total,
        }
    }

    /// The busiest subjects here, most active first.
    pub fn top_subjects(&self) -> Vec<(String, SubjectStats)> {
        self.subjects.top()
    }

    /// One row per subscription, at most `SNAPSHOT_SUBS_MAX`.
    pub fn sub_rows(&self) -> Vec<SubRow> {
        self.subs
            .iter()
            .flat_map(|(&cid, subs)| subs.values().map(move |s| (cid, s)))
            .take(SNAPSHOT_SUBS_MAX)
            .map(|(cid, s)| SubRow {
                subject: String::from_utf8_lossy(&s.subject).into_owned(),
                queue: s
                    .queue
                    .as_deref()
                    .map(|q| String::from_utf8_lossy(q).into_owned()),
                sid: String::from_utf8_lossy(&s.sid).into_owned(),
                cid,
                msgs: s.delivered(),
                max: s.max_msgs(),
            })
            .collect()
    }

    /// The subjects connection `cid` subscribes to.
    pub fn subjects_of(&self, cid: u64) -> Vec<String> {
        self.subs_of(cid)
            .map(|s| String::from_utf8_lossy(&s.subject).into_owned())
            .collect()
    }
}

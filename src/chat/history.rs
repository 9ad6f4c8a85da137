//! The newest chat messages (`[chat] history_messages` of them), hidden ones included, each as
//! the JSON of its `CHAT` event: what a joiner and `GET /api/chat` get (the visible ones), and the
//! console's moderation view (all of them). Persisted in `data_dir/chat/history.jsonl`, a
//! [`Journal`] (one record per message, per hide and per show; compacted to the kept messages),
//! so the conversation and what was hidden survive a restart. The file holds at most the kept
//! messages plus [`MIN_APPENDS_BEFORE_COMPACTING`] or as many records as they are, whichever is
//! more: it never grows with the number of messages ever sent.

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::journal::{Journal, JournalError, Journaled};

/// Appended records after which the file is compacted, at the least (a message is up to a few
/// KiB: this keeps a rewrite small and rare).
pub const MIN_APPENDS_BEFORE_COMPACTING: usize = 64;

const WHAT: &str = "chat history";

/// One kept message.
#[derive(Debug, Clone)]
pub struct Kept {
    pub id: String,
    /// Who wrote it (`streamer` for the streamer).
    pub user_id: String,
    /// The `CHAT` event as it was sent.
    pub json: Arc<str>,
    pub hidden: Option<Hidden>,
}

/// When a message was hidden, and by whom: a moderator's user id, or `streamer` for the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hidden {
    pub at: SystemTime,
    pub by: String,
}

/// One line of the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Record {
    Chat {
        id: String,
        user: String,
        event: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hidden: Option<Hidden>,
    },
    Hide {
        ids: Vec<String>,
        at: SystemTime,
        by: String,
    },
    Show {
        ids: Vec<String>,
    },
}

pub struct History {
    messages: VecDeque<Kept>,
    limit: usize,
    log: Option<Journal>,
}

impl History {
    /// The messages of `dir/history.jsonl` (created if absent), at most `limit` of them; changes
    /// are appended to it.
    pub fn open(dir: &Path, limit: usize) -> Result<Self, JournalError> {
        let path = dir.join("history.jsonl");
        let mut history = History::in_memory(limit);
        let log = Journal::open(WHAT, &path, MIN_APPENDS_BEFORE_COMPACTING, &mut history)?;
        history.log = Some(log);
        Ok(history)
    }

    /// A history that persists nothing (tests).
    pub fn in_memory(limit: usize) -> Self {
        History {
            messages: VecDeque::new(),
            limit,
            log: None,
        }
    }

    /// A new message; the oldest goes when there are more than the limit.
    pub fn push(&mut self, id: String, user_id: String, json: Arc<str>) {
        if self.limit == 0 {
            return;
        }
        self.record(Record::Chat {
            id,
            user: user_id,
            event: json.to_string(),
            hidden: None,
        });
    }

    /// Hides the kept messages among `ids` that are visible; returns their ids.
    pub fn hide(&mut self, ids: &[String], hidden: Hidden) -> Vec<String> {
        let changed = self.matching(ids, |m| m.hidden.is_none());
        if !changed.is_empty() {
            self.record(Record::Hide {
                ids: changed.clone(),
                at: hidden.at,
                by: hidden.by,
            });
        }
        changed
    }

    /// Shows again the kept messages among `ids` that are hidden; returns their ids.
    pub fn show(&mut self, ids: &[String]) -> Vec<String> {
        let changed = self.matching(ids, |m| m.hidden.is_some());
        if !changed.is_empty() {
            self.record(Record::Show {
                ids: changed.clone(),
            });
        }
        changed
    }

    /// The ids of the visible messages `user_id` wrote.
    pub fn visible_of(&self, user_id: &str) -> Vec<String> {
        self.messages
            .iter()
            .filter(|m| m.user_id == user_id && m.hidden.is_none())
            .map(|m| m.id.clone())
            .collect()
    }

    /// The kept messages among `ids`.
    pub fn kept<'a>(&'a self, ids: &'a [String]) -> impl Iterator<Item = &'a Kept> + 'a {
        let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
        self.messages
            .iter()
            .filter(move |m| wanted.contains(m.id.as_str()))
    }

    /// The visible messages, oldest first.
    pub fn visible(&self) -> Vec<Arc<str>> {
        self.messages
            .iter()
            .filter(|m| m.hidden.is_none())
            .map(|m| Arc::clone(&m.json))
            .collect()
    }

    /// Every kept message, oldest first.
    pub fn all(&self) -> Vec<Kept> {
        self.messages.iter().cloned().collect()
    }

    fn matching(&self, ids: &[String], state: impl Fn(&Kept) -> bool) -> Vec<String> {
        self.kept(ids)
            .filter(|m| state(m))
            .map(|m| m.id.clone())
            .collect()
    }
}

impl Journaled for History {
    type Record = Record;

    fn journal(&mut self) -> Option<&mut Journal> {
        self.log.as_mut()
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::Chat {
                id,
                user,
                event,
                hidden,
            } => {
                self.messages.push_back(Kept {
                    id,
                    user_id: user,
                    json: event.into(),
                    hidden,
                });
                let over = self.messages.len().saturating_sub(self.limit);
                self.messages.drain(..over);
            }
            Record::Hide { ids, at, by } => {
                let hidden = Hidden { at, by };
                let ids: HashSet<String> = ids.into_iter().collect();
                for message in self.messages.iter_mut().filter(|m| ids.contains(&m.id)) {
                    message.hidden = Some(hidden.clone());
                }
            }
            Record::Show { ids } => {
                let ids: HashSet<String> = ids.into_iter().collect();
                for message in self.messages.iter_mut().filter(|m| ids.contains(&m.id)) {
                    message.hidden = None;
                }
            }
        }
    }

    fn snapshot(&self) -> Vec<Record> {
        self.messages
            .iter()
            .map(|m| Record::Chat {
                id: m.id.clone(),
                user: m.user_id.clone(),
                event: m.json.to_string(),
                hidden: m.hidden.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;

    use super::*;

    fn push(history: &mut History, n: usize) {
        let json = format!("{{\"type\":\"CHAT\",\"id\":\"m{n}\",\"body\":\"héllo {n}\"}}");
        history.push(format!("m{n}"), format!("u{}", n % 2), json.into());
    }

    fn ids(history: &History) -> Vec<String> {
        history.all().into_iter().map(|m| m.id).collect()
    }

    fn hidden_by(by: &str) -> Hidden {
        Hidden {
            at: SystemTime::now(),
            by: by.into(),
        }
    }

    #[test]
    fn the_newest_messages_and_their_hidden_state_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut history = History::open(dir.path(), 3).unwrap();
            for n in 0..5 {
                push(&mut history, n);
            }
            assert_eq!(ids(&history), ["m2", "m3", "m4"]);
            let ids = ["m1".to_string(), "m3".into(), "m4".into(), "nope".into()];
            assert_eq!(history.hide(&ids, hidden_by("mod1")), ["m3", "m4"]);
            assert!(
                history.hide(&ids, hidden_by("mod2")).is_empty(),
                "hidden once"
            );
            assert_eq!(history.show(&["m4".to_string()]), ["m4"]);
            assert_eq!(history.visible_of("u0"), ["m2", "m4"]);
        }
        // A torn last line, cut inside the "é" of a message.
        let path = dir.path().join("history.jsonl");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"op\":\"chat\",\"id\":\"m5\",\"user\":\"u1\",\"event\":\"h\xc3")
            .unwrap();
        drop(file);

        let history = History::open(dir.path(), 3).unwrap();
        let all = history.all();
        assert_eq!(ids(&history), ["m2", "m3", "m4"]);
        assert_eq!(all[1].hidden.as_ref().map(|h| h.by.as_str()), Some("mod1"));
        assert!(all[0].hidden.is_none() && all[2].hidden.is_none());
        assert_eq!(history.visible().len(), 2);
        assert!(history.visible()[1].contains("héllo 4"));
        // Compacted: the three kept messages, their hidden state inside.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        // A lower limit at the next start keeps the newest.
        let history = History::open(dir.path(), 1).unwrap();
        assert_eq!(ids(&history), ["m4"]);
    }

    #[test]
    fn the_file_stays_bounded_however_many_messages_are_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let mut history = History::open(dir.path(), 5).unwrap();
        let mut most = 0;
        for n in 0..1000 {
            push(&mut history, n);
            if n % 3 == 0 {
                history.hide(&[format!("m{n}")], hidden_by("streamer"));
            }
            most = most.max(std::fs::read_to_string(&path).unwrap().lines().count());
        }
        assert!(
            most <= 5 + MIN_APPENDS_BEFORE_COMPACTING,
            "{most} lines after 1000 messages"
        );
    }

    #[test]
    fn a_history_of_nothing_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::open(dir.path(), 0).unwrap();
        push(&mut history, 1);
        assert!(history.all().is_empty());
        let text = std::fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
        assert!(text.is_empty());
    }
}

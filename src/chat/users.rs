//! Chat users without accounts: an id, an opaque access token, a display name, whether the
//! owner made them a moderator, and whether a moderator disabled them or timed them out; plus the
//! banned IP addresses. Kept in memory and persisted in `data_dir/chat/users.jsonl` so names,
//! moderators, timeouts and bans survive a restart.
//!
//! The file is a [`Journal`]: one JSON record per change (a registration, a name change, a
//! ban...), compacted once as many changes were appended as the compact file holds (at least
//! [`MIN_APPENDS_BEFORE_COMPACTING`]), so it stays within about twice what the users and bans need
//! (a user keeps only their last [`MAX_PREVIOUS_NAMES`] names, and a timeout that ended is
//! dropped, so neither renaming nor timeouts grow it). The file holds access tokens: it is
//! owner-only (0600), like the stream key.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::journal::{Journal, JournalError, Journaled};

/// One chat user as the hub and the admin API see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub display_name: String,
    pub created_at: SystemTime,
    /// Earlier names, oldest first: the last [`MAX_PREVIOUS_NAMES`] distinct ones, never the
    /// current one.
    pub previous_names: Vec<String>,
    pub name_changed_at: Option<SystemTime>,
    /// Set when a moderator disabled (banned) the user: their token is refused.
    pub disabled_at: Option<SystemTime>,
    /// The owner made them a moderator (scope `MODERATOR`).
    pub moderator: bool,
    /// Until when they may not write (a timeout); ignore it once past ([`User::timed_out_at`]).
    pub timed_out_until: Option<SystemTime>,
}

impl User {
    /// When the user's timeout ends, if it has not yet at `now`.
    pub fn timed_out_at(&self, now: SystemTime) -> Option<SystemTime> {
        self.timed_out_until.filter(|until| *until > now)
    }
}

/// Earlier names kept per user (and sent in every event that shows the user).
pub const MAX_PREVIOUS_NAMES: usize = 5;

/// Appended records after which the log is compacted, at the least.
pub const MIN_APPENDS_BEFORE_COMPACTING: usize = 1024;

/// One line of the log.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Record {
    Register {
        id: String,
        token: String,
        name: String,
        at: SystemTime,
    },
    Rename {
        id: String,
        name: String,
        at: SystemTime,
    },
    Disable {
        id: String,
        at: SystemTime,
    },
    Enable {
        id: String,
    },
    BanIp {
        ip: IpAddr,
        at: SystemTime,
    },
    UnbanIp {
        ip: IpAddr,
    },
    SetModerator {
        id: String,
        moderator: bool,
    },
    TimeOut {
        id: String,
        until: SystemTime,
    },
    EndTimeOut {
        id: String,
    },
}

const WHAT: &str = "chat user store";

pub struct UserStore {
    users: HashMap<String, User>,
    by_token: HashMap<String, String>,
    banned_ips: HashMap<IpAddr, SystemTime>,
    log: Option<Journal>,
}

impl UserStore {
    /// Users and bans from `dir/users.jsonl` (created if absent); changes are appended to it.
    pub fn open(dir: &Path) -> Result<Self, JournalError> {
        let path = dir.join("users.jsonl");
        let mut store = UserStore::in_memory();
        let log = Journal::open(WHAT, &path, MIN_APPENDS_BEFORE_COMPACTING, &mut store)?;
        store.log = Some(log);
        Ok(store)
    }

    /// A store that persists nothing (tests).
    pub fn in_memory() -> Self {
        UserStore {
            users: HashMap::new(),
            by_token: HashMap::new(),
            banned_ips: HashMap::new(),
            log: None,
        }
    }

    pub fn register(&mut self, id: String, token: String, name: String) -> User {
        let at = SystemTime::now();
        self.record(Record::Register {
            id: id.clone(),
            token,
            name,
            at,
        });
        self.users[&id].clone()
    }

    pub fn by_token(&self, token: &str) -> Option<&User> {
        self.by_token.get(token).and_then(|id| self.users.get(id))
    }

    pub fn get(&self, id: &str) -> Option<&User> {
        self.users.get(id)
    }

    /// The user's new name; the old one joins `previous_names`.
    pub fn rename(&mut self, id: &str, name: String) -> Option<User> {
        self.users.get(id)?;
        self.record(Record::Rename {
            id: id.to_owned(),
            name,
            at: SystemTime::now(),
        });
        self.users.get(id).cloned()
    }

    /// Disable (ban) or re-enable a user; `None` when there is no such user.
    pub fn set_enabled(&mut self, id: &str, enabled: bool) -> Option<User> {
        self.users.get(id)?;
        let id = id.to_owned();
        self.record(if enabled {
            Record::Enable { id: id.clone() }
        } else {
            Record::Disable {
                id: id.clone(),
                at: SystemTime::now(),
            }
        });
        self.users.get(&id).cloned()
    }

    pub fn ban_ip(&mut self, ip: IpAddr) {
        self.record(Record::BanIp {
            ip,
            at: SystemTime::now(),
        });
    }

    /// Whether the address was banned.
    pub fn unban_ip(&mut self, ip: IpAddr) -> bool {
        let was = self.banned_ips.contains_key(&ip);
        if was {
            self.record(Record::UnbanIp { ip });
        }
        was
    }

    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.banned_ips.contains_key(&ip)
    }

    /// Banned addresses and since when, oldest first.
    pub fn banned_ips(&self) -> Vec<(IpAddr, SystemTime)> {
        let mut bans: Vec<_> = self.banned_ips.iter().map(|(ip, at)| (*ip, *at)).collect();
        bans.sort_by_key(|(ip, at)| (*at, *ip));
        bans
    }

    /// Disabled users, for the admin API.
    pub fn disabled_users(&self) -> Vec<User> {
        let mut users: Vec<User> = self
            .users
            .values()
            .filter(|u| u.disabled_at.is_some())
            .cloned()
            .collect();
        users.sort_by_key(|u| u.disabled_at);
        users
    }

    /// Make a user a moderator, or a normal user again; `None` when there is no such user.
    pub fn set_moderator(&mut self, id: &str, moderator: bool) -> Option<User> {
        self.users.get(id)?;
        self.record(Record::SetModerator {
            id: id.to_owned(),
            moderator,
        });
        self.users.get(id).cloned()
    }

    /// The user may not write until `until` (`None`: from now on they may).
    pub fn set_timeout(&mut self, id: &str, until: Option<SystemTime>) -> Option<User> {
        self.users.get(id)?;
        let id = id.to_owned();
        self.record(match until {
            Some(until) => Record::TimeOut {
                id: id.clone(),
                until,
            },
            None => Record::EndTimeOut { id: id.clone() },
        });
        self.users.get(&id).cloned()
    }

    /// The moderators, oldest user first.
    pub fn moderators(&self) -> Vec<User> {
        let mut users: Vec<User> = self
            .users
            .values()
            .filter(|u| u.moderator)
            .cloned()
            .collect();
        users.sort_by_key(|u| u.created_at);
        users
    }
}

impl Journaled for UserStore {
    type Record = Record;

    fn journal(&mut self) -> Option<&mut Journal> {
        self.log.as_mut()
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::Register {
                id,
                token,
                name,
                at,
            } => {
                self.by_token.insert(token, id.clone());
                self.users.insert(
                    id.clone(),
                    User {
                        id,
                        display_name: name,
                        created_at: at,
                        previous_names: Vec::new(),
                        name_changed_at: None,
                        disabled_at: None,
                        moderator: false,
                        timed_out_until: None,
                    },
                );
            }
            Record::Rename { id, name, at } => {
                if let Some(user) = self.users.get_mut(&id) {
                    let old = std::mem::replace(&mut user.display_name, name);
                    let previous = &mut user.previous_names;
                    previous.retain(|earlier| *earlier != old && *earlier != user.display_name);
                    previous.push(old);
                    let over = previous.len().saturating_sub(MAX_PREVIOUS_NAMES);
                    previous.drain(..over);
                    user.name_changed_at = Some(at);
                }
            }
            Record::Disable { id, at } => {
                if let Some(user) = self.users.get_mut(&id) {
                    user.disabled_at = Some(at);
                }
            }
            Record::Enable { id } => {
                if let Some(user) = self.users.get_mut(&id) {
                    user.disabled_at = None;
                }
            }
            Record::BanIp { ip, at } => {
                self.banned_ips.entry(ip).or_insert(at);
            }
            Record::UnbanIp { ip } => {
                self.banned_ips.remove(&ip);
            }
            Record::SetModerator { id, moderator } => {
                if let Some(user) = self.users.get_mut(&id) {
                    user.moderator = moderator;
                }
            }
            Record::TimeOut { id, until } => {
                if let Some(user) = self.users.get_mut(&id) {
                    user.timed_out_until = Some(until);
                }
            }
            Record::EndTimeOut { id } => {
                if let Some(user) = self.users.get_mut(&id) {
                    user.timed_out_until = None;
                }
            }
        }
    }

    /// The current state as records: each user's registration and what changed since, each
    /// ban. A timeout that ended is left out.
    fn snapshot(&self) -> Vec<Record> {
        let now = SystemTime::now();
        let tokens: HashMap<&String, &String> =
            self.by_token.iter().map(|(t, id)| (id, t)).collect();
        let mut records = Vec::new();
        let mut users: Vec<&User> = self.users.values().collect();
        users.sort_by_key(|u| u.created_at);
        for user in users {
            let Some(token) = tokens.get(&user.id) else {
                continue;
            };
            let first = user.previous_names.first().unwrap_or(&user.display_name);
            records.push(Record::Register {
                id: user.id.clone(),
                token: (*token).clone(),
                name: first.clone(),
                at: user.created_at,
            });
            for name in user
                .previous_names
                .iter()
                .skip(1)
                .chain((!user.previous_names.is_empty()).then_some(&user.display_name))
            {
                records.push(Record::Rename {
                    id: user.id.clone(),
                    name: name.clone(),
                    at: user.name_changed_at.unwrap_or(user.created_at),
                });
            }
            if let Some(at) = user.disabled_at {
                records.push(Record::Disable {
                    id: user.id.clone(),
                    at,
                });
            }
            if user.moderator {
                records.push(Record::SetModerator {
                    id: user.id.clone(),
                    moderator: true,
                });
            }
            if let Some(until) = user.timed_out_at(now) {
                records.push(Record::TimeOut {
                    id: user.id.clone(),
                    until,
                });
            }
        }
        for (ip, at) in self.banned_ips() {
            records.push(Record::BanIp { ip, at });
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::time::Duration;

    use super::*;

    fn ids(store: &UserStore) -> HashSet<String> {
        store.users.keys().cloned().collect()
    }

    #[test]
    fn users_names_and_bans_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = UserStore::open(dir.path()).unwrap();
            store.register("u1".into(), "token-1".into(), "CalmOtter42".into());
            store.register("u2".into(), "token-2".into(), "Bob".into());
            store.rename("u1", "Ana".into());
            store.rename("u1", "Ana B.".into());
            store.set_enabled("u2", false);
            store.set_moderator("u1", true);
            store.register("u3".into(), "token-3".into(), "Cy".into());
            let hour = Duration::from_secs(3600);
            store.set_timeout("u3", Some(SystemTime::now() + hour));
            // An ended timeout is not kept.
            store.set_timeout("u2", Some(SystemTime::now() - hour));
            store.ban_ip("192.0.2.7".parse().unwrap());
            store.ban_ip("2001:db8::1".parse().unwrap());
            assert!(store.unban_ip("2001:db8::1".parse().unwrap()));
        }
        // A torn last line, as a crash mid-append would leave.
        let path = dir.path().join("users.jsonl");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        write!(file, "{{\"op\":\"rename\",\"id\":\"u2\",\"na").unwrap();
        drop(file);

        let store = UserStore::open(dir.path()).unwrap();
        assert_eq!(
            ids(&store),
            HashSet::from(["u1".to_string(), "u2".to_string(), "u3".to_string()])
        );
        assert_eq!(store.moderators().len(), 1);
        assert!(store.get("u1").unwrap().moderator);
        let now = SystemTime::now();
        assert!(store.get("u3").unwrap().timed_out_at(now).is_some());
        assert!(store.get("u2").unwrap().timed_out_at(now).is_none());
        let ana = store.by_token("token-1").unwrap();
        assert_eq!(ana.display_name, "Ana B.");
        assert_eq!(ana.previous_names, ["CalmOtter42", "Ana"]);
        assert!(store.by_token("token-2").unwrap().disabled_at.is_some());
        assert!(store.by_token("nope").is_none());
        assert!(store.is_banned("192.0.2.7".parse().unwrap()));
        assert!(!store.is_banned("2001:db8::1".parse().unwrap()));
        // Compacted: one register per user, the renames, the disabled user, the moderator, the
        // timeout still running, the ban.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3 + 2 + 1 + 1 + 1 + 1, "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn enabling_again_restores_the_token() {
        let mut store = UserStore::in_memory();
        store.register("u1".into(), "t".into(), "A".into());
        store.set_enabled("u1", false);
        assert_eq!(store.disabled_users().len(), 1);
        store.set_enabled("u1", true);
        assert!(store.by_token("t").unwrap().disabled_at.is_none());
        assert!(store.set_enabled("nobody", false).is_none());
    }

    fn lines(path: &Path) -> usize {
        std::fs::read_to_string(path).unwrap().lines().count()
    }

    #[test]
    fn a_user_keeps_their_last_distinct_names() {
        let mut store = UserStore::in_memory();
        store.register("u1".into(), "t".into(), "A".into());
        for name in ["B", "A", "C", "B", "D", "E", "F", "G"] {
            store.rename("u1", name.into());
        }
        let user = store.get("u1").unwrap();
        assert_eq!(user.display_name, "G");
        // A B A C B D E F G: "A" and "B" once each, at their last use; the oldest go first.
        assert_eq!(user.previous_names, ["C", "B", "D", "E", "F"]);
        // Going back to an earlier name takes it out of the earlier ones.
        store.rename("u1", "E".into());
        assert_eq!(
            store.get("u1").unwrap().previous_names,
            ["C", "B", "D", "F", "G"]
        );
    }

    #[test]
    fn renaming_without_end_does_not_grow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.jsonl");
        let mut store = UserStore::open(dir.path()).unwrap();
        for n in 0..20 {
            store.register(format!("u{n}"), format!("t{n}"), format!("User{n}"));
        }
        let mut most = 0;
        for n in 0..5000 {
            store.rename("u7", format!("Name{n}"));
            most = most.max(lines(&path));
        }
        // 20 registrations and the renamed user's 5 earlier names, compacted: 25 records; the log
        // is compacted once 1024 changes were appended.
        assert!(
            most <= 25 + MIN_APPENDS_BEFORE_COMPACTING,
            "{most} lines after 5000 renames"
        );
        store.ban_ip("192.0.2.9".parse().unwrap());
        drop(store);
        let store = UserStore::open(dir.path()).unwrap();
        let user = store.get("u7").unwrap();
        assert_eq!(user.display_name, "Name4999");
        assert_eq!(
            user.previous_names,
            ["Name4994", "Name4995", "Name4996", "Name4997", "Name4998"]
        );
        assert_eq!(store.get("u3").unwrap().display_name, "User3");
        assert!(store.is_banned("192.0.2.9".parse().unwrap()));
        assert_eq!(lines(&path), 20 + 5 + 1);
    }
}

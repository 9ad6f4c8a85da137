//! Who may moderate whom (docs/CHAT.md §7.1). The owner (the admin API) may do everything; a
//! moderator (a chat user the owner promoted, acting with their own chat access token) may only
//! restrict normal users, and only while they are enabled and not timed out themselves. Undoing
//! (showing a hidden message, enabling a user, lifting a timeout) is the owner's. The hub checks
//! these rules under its lock on every action, so a moderator demoted or banned a moment ago has
//! no powers left.
//!
//! | action | owner | moderator |
//! |---|---|---|
//! | hide messages | any | kept messages only; not the streamer's nor another moderator's |
//! | show hidden messages | yes | no |
//! | disable (ban) a user | any user | a normal user other than themselves |
//! | enable a user | yes | no |
//! | time out a user | any user; a new timeout replaces the old | a normal user other than themselves; never shortens one running |
//! | lift a timeout | yes | no |

use std::time::{Duration, SystemTime};

use super::events::STREAMER_ID;
use super::users::User;

/// The longest timeout: a day.
pub const MAX_TIMEOUT_MINUTES: u32 = 24 * 60;
/// Message ids one request may name (each is sent on to every page).
pub const MAX_IDS_PER_REQUEST: usize = 100;
/// The longest message id taken (ids are `<13 digits>-<counter>`).
pub const MAX_ID_CHARS: usize = 64;

/// Who asks.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// The admin API.
    Owner,
    /// A chat user with this access token, who must be a moderator.
    Moderator(&'a str),
}

/// Who acts, once checked.
pub enum By {
    Owner,
    Moderator(User),
}

impl By {
    /// The acting user's id (the streamer's for the owner), as `hiddenBy` shows it.
    pub fn user_id(&self) -> &str {
        match self {
            By::Owner => STREAMER_ID,
            By::Moderator(user) => &user.id,
        }
    }

    pub fn is_owner(&self) -> bool {
        matches!(self, By::Owner)
    }
}

/// Why a moderation request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No token, or one no user has (401).
    #[error("send a moderator's chat access token as ?accessToken=...")]
    NotSignedIn,
    /// The asker may not do this (403).
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404.
    #[error("no such user")]
    NoSuchUser,
    /// The request is not one the server takes (400).
    #[error("{0}")]
    Invalid(String),
}

/// Whether `user` (the owner of the token, if any) may moderate at `now`.
pub fn check_moderator(user: Option<&User>, now: SystemTime) -> Result<By, Denied> {
    let user = user.ok_or(Denied::NotSignedIn)?;
    if !user.moderator {
        return Err(Denied::Forbidden("only moderators can do this"));
    }
    if user.disabled_at.is_some() {
        return Err(Denied::Forbidden("your chat user is disabled"));
    }
    if user.timed_out_at(now).is_some() {
        return Err(Denied::Forbidden(
            "you are timed out: no moderation until it ends",
        ));
    }
    Ok(By::Moderator(user.clone()))
}

/// Whether `by` may ban or time out the user `target_id` (`target`: that user, if there is one).
pub fn check_restrict<'u>(
    by: &By,
    target_id: &str,
    target: Option<&'u User>,
) -> Result<&'u User, Denied> {
    if let By::Moderator(moderator) = by {
        if target_id == STREAMER_ID {
            return Err(Denied::Forbidden("the streamer cannot be moderated"));
        }
        if target_id == moderator.id {
            return Err(Denied::Forbidden("you cannot moderate yourself"));
        }
    }
    let target = target.ok_or(Denied::NoSuchUser)?;
    if matches!(by, By::Moderator(_)) && target.moderator {
        return Err(Denied::Forbidden(
            "only the owner can ban or time out a moderator",
        ));
    }
    Ok(target)
}

/// Whether `by` may hide a message of `author_id` (`author`: that user, if still known).
pub fn check_hide(by: &By, author_id: &str, author: Option<&User>) -> Result<(), Denied> {
    let By::Moderator(moderator) = by else {
        return Ok(());
    };
    if author_id == STREAMER_ID {
        return Err(Denied::Forbidden(
            "only the owner can hide the streamer's messages",
        ));
    }
    if author_id != moderator.id && author.is_some_and(|a| a.moderator) {
        return Err(Denied::Forbidden(
            "only the owner can hide another moderator's messages",
        ));
    }
    Ok(())
}

/// What only the owner may do (undo: show, enable, lift a timeout).
pub fn check_owner(by: &By, what: &'static str) -> Result<(), Denied> {
    if by.is_owner() {
        Ok(())
    } else {
        Err(Denied::Forbidden(what))
    }
}

/// The ids of a hide/show request, if it is within bounds.
pub fn check_ids(ids: &[String]) -> Result<(), Denied> {
    if ids.len() > MAX_IDS_PER_REQUEST {
        return Err(Denied::Invalid(format!(
            "at most {MAX_IDS_PER_REQUEST} message ids in one request"
        )));
    }
    if ids.iter().any(|id| id.chars().count() > MAX_ID_CHARS) {
        return Err(Denied::Invalid(format!(
            "message ids are at most {MAX_ID_CHARS} characters"
        )));
    }
    Ok(())
}

/// When a timeout of `minutes` given at `now` ends (`None`: 0, lifting it), if the length is
/// allowed.
pub fn timeout_end(minutes: u32, now: SystemTime) -> Result<Option<SystemTime>, Denied> {
    match minutes {
        0 => Ok(None),
        1..=MAX_TIMEOUT_MINUTES => Ok(Some(now + Duration::from_secs(u64::from(minutes) * 60))),
        _ => Err(Denied::Invalid(format!(
            "minutes must be from 1 to {MAX_TIMEOUT_MINUTES} (0 lifts a timeout)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, moderator: bool) -> User {
        User {
            id: id.into(),
            display_name: id.into(),
            created_at: SystemTime::UNIX_EPOCH,
            previous_names: Vec::new(),
            name_changed_at: None,
            disabled_at: None,
            moderator,
            timed_out_until: None,
        }
    }

    #[test]
    fn only_an_enabled_moderator_who_is_not_timed_out_moderates() {
        let now = SystemTime::now();
        assert_eq!(check_moderator(None, now).err(), Some(Denied::NotSignedIn));
        let normal = user("n", false);
        assert!(matches!(
            check_moderator(Some(&normal), now),
            Err(Denied::Forbidden(_))
        ));
        let mut moderator = user("m", true);
        assert!(check_moderator(Some(&moderator), now).is_ok());
        moderator.timed_out_until = Some(now + Duration::from_secs(60));
        assert!(check_moderator(Some(&moderator), now).is_err());
        moderator.timed_out_until = Some(now - Duration::from_secs(1));
        assert!(check_moderator(Some(&moderator), now).is_ok(), "it ended");
        moderator.disabled_at = Some(now);
        assert!(check_moderator(Some(&moderator), now).is_err());
    }

    #[test]
    fn a_moderator_restricts_normal_users_only() {
        let by = By::Moderator(user("m", true));
        let (normal, other_moderator) = (user("n", false), user("m2", true));
        assert!(check_restrict(&by, "n", Some(&normal)).is_ok());
        for (id, target) in [
            ("m2", Some(&other_moderator)),
            ("m", Some(&user("m", true))),
            (STREAMER_ID, None),
        ] {
            assert!(
                matches!(check_restrict(&by, id, target), Err(Denied::Forbidden(_))),
                "{id}"
            );
        }
        assert_eq!(
            check_restrict(&by, "x", None).err(),
            Some(Denied::NoSuchUser)
        );
        // The owner restricts anyone there is.
        assert!(check_restrict(&By::Owner, "m2", Some(&other_moderator)).is_ok());
        assert_eq!(
            check_restrict(&By::Owner, STREAMER_ID, None).err(),
            Some(Denied::NoSuchUser)
        );
    }

    #[test]
    fn a_moderator_hides_normal_users_and_their_own_messages() {
        let by = By::Moderator(user("m", true));
        assert!(check_hide(&by, "n", Some(&user("n", false))).is_ok());
        assert!(check_hide(&by, "gone", None).is_ok());
        assert!(check_hide(&by, "m", Some(&user("m", true))).is_ok());
        assert!(check_hide(&by, "m2", Some(&user("m2", true))).is_err());
        assert!(check_hide(&by, STREAMER_ID, None).is_err());
        assert!(check_hide(&By::Owner, STREAMER_ID, None).is_ok());
    }

    #[test]
    fn requests_are_bounded() {
        let now = SystemTime::now();
        assert_eq!(timeout_end(0, now), Ok(None));
        assert_eq!(timeout_end(1, now), Ok(Some(now + Duration::from_secs(60))));
        assert!(timeout_end(MAX_TIMEOUT_MINUTES, now).is_ok());
        assert!(timeout_end(MAX_TIMEOUT_MINUTES + 1, now).is_err());
        assert!(check_ids(&vec!["1-1".to_string(); MAX_IDS_PER_REQUEST]).is_ok());
        assert!(check_ids(&vec!["1-1".to_string(); MAX_IDS_PER_REQUEST + 1]).is_err());
        assert!(check_ids(&["x".repeat(MAX_ID_CHARS + 1)]).is_err());
    }
}

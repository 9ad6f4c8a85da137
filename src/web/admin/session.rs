//! The console's sign-in sessions: signing in with the password starts one, named by a random
//! token the browser keeps in an `HttpOnly`, `SameSite=Strict` cookie; each session also has
//! its own CSRF token, which the console's scripts send as `X-CSRF-Token` with every request
//! that changes something (a page on another site can make the browser send the cookie, but
//! cannot read the token). Sessions live in memory: a restart signs the owner out. They end
//! when signed out, when the password changes, after [`LIFETIME`], or when more than
//! [`MAX_SESSIONS`] are open (the oldest first), so they cannot pile up.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use warp::http::header::COOKIE as COOKIE_HEADER;
use warp::http::HeaderMap;

use crate::secrets::{constant_time_eq, random_token, SecretError};

/// The cookie's name.
pub const COOKIE: &str = "selfcast_admin";

/// How long a session lasts from signing in.
pub const LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Sessions open at once (the owner's phone, laptop, a second browser...).
pub const MAX_SESSIONS: usize = 16;

/// 43 symbols of 62: 256 bits.
const TOKEN_LENGTH: usize = 43;

/// A session just started: what the browser is given.
pub struct Started {
    pub token: String,
    pub csrf_token: String,
    pub expires_at: SystemTime,
}

/// A session found by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub csrf_token: String,
    pub expires_at: SystemTime,
}

struct Entry {
    session: Session,
    started: Instant,
    ends: Instant,
}

#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    pub fn start(&self, now: Instant) -> Result<Started, SecretError> {
        let token = random_token(TOKEN_LENGTH)?;
        let csrf_token = random_token(TOKEN_LENGTH)?;
        let expires_at = SystemTime::now() + LIFETIME;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, entry| entry.ends > now);
        while open.len() >= MAX_SESSIONS {
            let oldest = open
                .iter()
                .min_by_key(|(_, entry)| entry.started)
                .map(|(token, _)| token.clone());
            match oldest {
                Some(oldest) => open.remove(&oldest),
                None => break,
            };
        }
        open.insert(
            token.clone(),
            Entry {
                session: Session {
                    csrf_token: csrf_token.clone(),
                    expires_at,
                },
                started: now,
                ends: now + LIFETIME,
            },
        );
        Ok(Started {
            token,
            csrf_token,
            expires_at,
        })
    }

    /// The open session `token` names, if any.
    pub fn find(&self, token: &str, now: Instant) -> Option<Session> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        match open.get(token) {
            Some(entry) if entry.ends > now => Some(entry.session.clone()),
            Some(_) => {
                open.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, token: &str) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.remove(token);
    }

    /// Ends every session but `keep` (after a password change).
    pub fn end_all_but(&self, keep: Option<&str>) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|token, _| Some(token.as_str()) == keep);
    }
}

impl Session {
    /// Whether `given` (an `X-CSRF-Token` header) is this session's token.
    pub fn csrf_matches(&self, given: &[u8]) -> bool {
        constant_time_eq(given, self.csrf_token.as_bytes())
    }
}

/// The session cookie among a request's `Cookie` headers, if there is one.
pub fn token_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE_HEADER)
        .iter()
        .filter_map(|header| header.to_str().ok())
        .find_map(token_in)
}

/// The session cookie of one `Cookie` header value, if there is one.
fn token_in(cookie_header: &str) -> Option<&str> {
    cookie_header.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name.trim() == COOKIE).then(|| value.trim())
    })
}

/// `Set-Cookie` for a session just started; `secure` when the console is served over HTTPS.
pub fn set_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that makes the browser forget the cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_until_it_ends() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let started = sessions.start(now).unwrap();
        assert_eq!(started.token.len(), TOKEN_LENGTH);
        let found = sessions.find(&started.token, now).unwrap();
        assert_eq!(found.csrf_token, started.csrf_token);
        assert!(found.csrf_matches(started.csrf_token.as_bytes()));
        assert!(!found.csrf_matches(b""));
        assert!(sessions.find("not-a-token", now).is_none());
        assert!(
            sessions.find(&started.token, now + LIFETIME).is_none(),
            "expired"
        );
        assert!(
            sessions.find(&started.token, now).is_none(),
            "and forgotten"
        );

        let started = sessions.start(now).unwrap();
        sessions.end(&started.token);
        assert!(sessions.find(&started.token, now).is_none());
    }

    #[test]
    fn the_oldest_sessions_make_room() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let tokens: Vec<String> = (0..MAX_SESSIONS as u64 + 2)
            .map(|n| sessions.start(now + Duration::from_secs(n)).unwrap().token)
            .collect();
        let later = now + Duration::from_secs(100);
        assert!(sessions.find(&tokens[0], later).is_none());
        assert!(sessions.find(&tokens[1], later).is_none());
        assert!(tokens[2..]
            .iter()
            .all(|t| sessions.find(t, later).is_some()));
    }

    #[test]
    fn a_password_change_keeps_only_the_session_that_made_it() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let mine = sessions.start(now).unwrap().token;
        let other = sessions.start(now).unwrap().token;
        sessions.end_all_but(Some(&mine));
        assert!(sessions.find(&mine, now).is_some());
        assert!(sessions.find(&other, now).is_none());
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        assert_eq!(token_in("a=1; selfcast_admin=tok; b=2"), Some("tok"));
        assert_eq!(token_in("selfcast_admin_x=1"), None);
        assert_eq!(token_in(""), None);
        let cookie = set_cookie("tok", true);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.ends_with("; Secure"));
        assert!(!set_cookie("tok", false).contains("Secure"));
    }

    /// HTTP/2 clients may split cookies over several `Cookie` headers.
    #[test]
    fn the_cookie_is_found_in_any_cookie_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(token_of(&headers), None);
        headers.append(COOKIE_HEADER, "theme=dark".parse().unwrap());
        headers.append(COOKIE_HEADER, "selfcast_admin=tok".parse().unwrap());
        assert_eq!(token_of(&headers), Some("tok"));
    }
}

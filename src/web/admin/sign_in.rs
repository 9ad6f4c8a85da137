//! Signing in as the admin, for every way of doing it (HTTP Basic auth on `/api/admin/`, the
//! console's sign-in form, the old password when changing it):
//! the user name `admin` and the password are compared in constant time, behind the
//! [`BruteForceGuard`](crate::brute_force::BruteForceGuard) in `WebState::admin_guard`, so that
//! an address that keeps guessing is slowed down, then locked out, and refused without its
//! password being checked. The right password forgives the address.

use std::net::IpAddr;
use std::time::Instant;

use base64::Engine as _;
use warp::http::{HeaderValue, StatusCode};
use warp::Reply as _;

use crate::brute_force::Refused;
use crate::secrets::constant_time_eq;
use crate::web::WebState;

/// The one user name.
const ADMIN_USER: &[u8] = b"admin";

/// Why a sign-in failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInError {
    /// No user name and password were given (or not as HTTP Basic auth).
    Missing,
    /// The wrong user name or password.
    Wrong,
    /// Too many wrong passwords from this address: refused without checking.
    TooMany(Refused),
}

/// Checks `user` and `password` from `peer`, unless its wrong guesses say it must wait.
pub fn sign_in(
    state: &WebState,
    peer: IpAddr,
    user: &[u8],
    password: &[u8],
    now: Instant,
) -> Result<(), SignInError> {
    let guard = &state.admin_guard;
    guard.check(peer, now).map_err(SignInError::TooMany)?;
    // Both compared, whatever the first says: the time does not tell which was wrong.
    let user_ok = constant_time_eq(user, ADMIN_USER);
    let password_ok = state.admin_password.matches(password);
    if user_ok & password_ok {
        guard.succeeded(peer);
        Ok(())
    } else {
        guard.failed_guess(peer, (user, password), now);
        Err(SignInError::Wrong)
    }
}

/// The user name and password of an `Authorization: Basic base64(user:password)` header.
pub fn basic_credentials(header: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let encoded = header
        .strip_prefix(b"Basic ")
        .or_else(|| header.strip_prefix(b"basic "))?;
    let mut decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_ascii())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let password = decoded.split_off(colon + 1);
    decoded.truncate(colon);
    Some((decoded, password))
}

/// The answer to a failed sign-in: 401 (with a Basic challenge when `challenge`: not for the
/// console's own requests, where it would open the browser's password dialog), or 429 with
/// `Retry-After` and why, in words.
pub fn refusal(error: SignInError, challenge: bool) -> warp::reply::Response {
    match error {
        SignInError::Missing | SignInError::Wrong => {
            let why = if challenge {
                "the admin API needs the admin password (HTTP Basic auth, user admin)"
            } else if error == SignInError::Wrong {
                "wrong password"
            } else {
                "not signed in, or the session has ended: sign in again"
            };
            let mut response = super::error(StatusCode::UNAUTHORIZED, why);
            if challenge {
                response.headers_mut().insert(
                    "www-authenticate",
                    HeaderValue::from_static("Basic realm=\"selfcast\""),
                );
            }
            response
        }
        SignInError::TooMany(refused) => {
            let seconds = refused.retry_after_secs();
            let why = if refused.locked_out {
                format!(
                    "too many wrong passwords from your address: it is locked out for {}, even \
                     with the right password (the owner can lift this by restarting selfcast)",
                    in_words(seconds)
                )
            } else {
                format!(
                    "too many wrong passwords from your address: try again in {} (this \
                     password was not checked)",
                    in_words(seconds)
                )
            };
            let body = serde_json::json!({
                "error": why,
                "retryAfterSeconds": seconds,
                "lockedOut": refused.locked_out,
            });
            let mut response =
                warp::reply::with_status(warp::reply::json(&body), StatusCode::TOO_MANY_REQUESTS)
                    .into_response();
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(seconds));
            response
        }
    }
}

fn in_words(seconds: u64) -> String {
    match seconds {
        1 => "1 second".into(),
        0..=119 => format!("{seconds} seconds"),
        _ => format!("{} minutes", seconds.div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_decoded() {
        // "admin:s3cret-pass" and "root:a:b" in base64.
        assert_eq!(
            basic_credentials(b"Basic YWRtaW46czNjcmV0LXBhc3M="),
            Some((b"admin".to_vec(), b"s3cret-pass".to_vec()))
        );
        assert_eq!(
            basic_credentials(b"basic cm9vdDphOmI="),
            Some((b"root".to_vec(), b"a:b".to_vec())),
            "the password may hold a colon"
        );
        assert_eq!(basic_credentials(b"Bearer YWRtaW46czNjcmV0LXBhc3M="), None);
        assert_eq!(basic_credentials(b"Basic !!!"), None);
        assert_eq!(basic_credentials(b"Basic YWRtaW4="), None, "no colon");
    }

    #[test]
    fn waits_in_words() {
        assert_eq!(in_words(1), "1 second");
        assert_eq!(in_words(30), "30 seconds");
        assert_eq!(in_words(900), "15 minutes");
        assert_eq!(in_words(899), "15 minutes");
    }
}

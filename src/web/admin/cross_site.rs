//! Refusing the requests a page on another site makes the owner's browser send to the admin API
//! (cross-site request forgery: the browser attaches the owner's cached Basic credentials). A
//! browser says where a request comes from; scripts (curl, bots) say nothing and are let
//! through. The rule is the one of Go's `net/http.CrossOriginProtection`:
//!
//! - `Sec-Fetch-Site` (sent by every current browser, and no page can set it): `same-origin`, or
//!   `none` (the address bar, a bookmark), is allowed; anything else (`same-site`, `cross-site`)
//!   is refused. It is trusted over `Origin`, which would differ from `Host` behind a reverse
//!   proxy that rewrites `Host`.
//! - Without it, an `Origin` must be this server: `http` or `https` with the host and port of the
//!   request (`Host`; default ports left out). `null` or any other origin is refused.
//! - Neither header: allowed (not a browser, or one too old to say).

use warp::host::Authority;
use warp::http::header::ORIGIN;
use warp::http::HeaderMap;

/// Why a request was taken for one from another site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CrossSite {
    #[error(
        "refused: your browser says this request comes from another site (Sec-Fetch-Site); the \
         admin API takes requests from selfcast's own pages and from scripts"
    )]
    FetchSite,
    #[error(
        "refused: this request comes from a page on another origin (its Origin is not this \
         server's); the admin API takes requests from selfcast's own pages and from scripts"
    )]
    Origin,
}

/// `Ok` unless the request says it comes from another site. `host` is the request's authority
/// (the `Host` header).
pub fn check(headers: &HeaderMap, host: Option<&Authority>) -> Result<(), CrossSite> {
    let mut fetch_sites = headers.get_all("sec-fetch-site").iter();
    if let Some(site) = fetch_sites.next() {
        return match (site.as_bytes(), fetch_sites.next()) {
            (b"same-origin" | b"none", None) => Ok(()),
            _ => Err(CrossSite::FetchSite),
        };
    }
    let mut origins = headers.get_all(ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return Ok(());
    };
    let own = origins.next().is_none()
        && host.is_some_and(|host| is_own_origin(origin.as_bytes(), host.as_str()));
    if own {
        Ok(())
    } else {
        Err(CrossSite::Origin)
    }
}

/// `origin` (`scheme://host[:port]`) names `host` (`host[:port]`), default ports or not.
fn is_own_origin(origin: &[u8], host: &str) -> bool {
    let Ok(origin) = std::str::from_utf8(origin) else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = if scheme.eq_ignore_ascii_case("http") {
        ":80"
    } else if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        return false;
    };
    let without_default = |a: &'_ str| a.strip_suffix(default_port).unwrap_or(a).to_owned();
    !authority.is_empty() && without_default(authority).eq_ignore_ascii_case(&without_default(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn check_on(host: &str, headers: &[(&'static str, &str)]) -> Result<(), CrossSite> {
        check(&request(headers), Some(&host.parse().unwrap()))
    }

    #[test]
    fn scripts_and_own_pages_pass() {
        assert_eq!(
            check_on("127.0.0.1:8080", &[]),
            Ok(()),
            "curl sends neither"
        );
        for site in ["same-origin", "none"] {
            assert_eq!(
                check_on("h:8080", &[("sec-fetch-site", site)]),
                Ok(()),
                "{site}"
            );
        }
        for (host, origin) in [
            ("127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("Stream.Example.com", "https://stream.example.com"),
            ("stream.example.com:443", "https://stream.example.com"),
            ("stream.example.com", "http://stream.example.com:80"),
            ("[::1]:8080", "http://[::1]:8080"),
        ] {
            assert_eq!(
                check_on(host, &[("origin", origin)]),
                Ok(()),
                "{origin} on {host}"
            );
        }
        // Behind a proxy that rewrites Host, the browser's Sec-Fetch-Site is what counts.
        assert_eq!(
            check_on(
                "127.0.0.1:8080",
                &[
                    ("origin", "https://stream.example.com"),
                    ("sec-fetch-site", "same-origin")
                ]
            ),
            Ok(())
        );
    }

    #[test]
    fn other_sites_are_refused() {
        for site in ["cross-site", "same-site", "Same-Origin", ""] {
            assert_eq!(
                check_on("h:8080", &[("sec-fetch-site", site)]),
                Err(CrossSite::FetchSite),
                "{site:?}"
            );
        }
        assert_eq!(
            check_on(
                "h:8080",
                &[
                    ("sec-fetch-site", "same-origin"),
                    ("sec-fetch-site", "cross-site")
                ]
            ),
            Err(CrossSite::FetchSite),
            "two answers"
        );
        for (host, origin) in [
            ("127.0.0.1:8080", "http://evil.example"),
            ("127.0.0.1:8080", "http://127.0.0.1:9090"),
            ("127.0.0.1:8080", "http://127.0.0.1"),
            ("127.0.0.1", "http://127.0.0.1:443"),
            ("127.0.0.1:8080", "null"),
            ("127.0.0.1:8080", "ftp://127.0.0.1:8080"),
            ("127.0.0.1:8080", "http://"),
            ("127.0.0.1:8080", "http://127.0.0.1:8080.evil.example"),
        ] {
            assert_eq!(
                check_on(host, &[("origin", origin)]),
                Err(CrossSite::Origin),
                "{origin} on {host}"
            );
        }
        assert_eq!(
            check(&request(&[("origin", "http://127.0.0.1:8080")]), None),
            Err(CrossSite::Origin),
            "no Host to compare with"
        );
        assert_eq!(
            check_on(
                "h:80",
                &[("origin", "http://h"), ("origin", "http://evil.example")]
            ),
            Err(CrossSite::Origin),
            "two origins"
        );
    }
}

//! `kind = "ipfs"` (experimental): segments added to an IPFS node through its RPC API (Kubo's
//! `/api/v0`, which js-ipfs serves too) and fetched by viewers from `<gateway_url>/ipfs/<cid>`.
//!
//! IPFS names a file by its content, so a playlist that changes every segment would get a new
//! address each time: the playlists stay with selfcast instead ([`IpfsPlaylists`], served at
//! `/hls-ipfs/`), rewritten to point at the gateway. Files that leave the window are unpinned;
//! the node drops their blocks at its next garbage collection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use super::error::{root_cause, SinkError};
use super::plan::{join_url, Object};
use crate::config::IpfsConfig;
use crate::hls::files::is_playlist;
use crate::hls::files::MASTER_PLAYLIST_NAME;
use crate::secrets::random_token;

/// Where selfcast serves the playlists of an IPFS sink: `/hls-ipfs/stream.m3u8`, ...
pub const IPFS_PLAYLISTS_ROOT: &str = "hls-ipfs";

/// Connecting longer than this means the node is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One request (a segment is a few MB at most) taking longer than this is a failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The empty file as an inline (identity) CID: every gateway serves it without looking for it,
/// so fetching it checks the gateway itself.
const EMPTY_FILE_CID: &str = "bafkqaaa";

/// Who a request goes to, in messages.
const NODE_API: &str = "the IPFS node";
const GATEWAY: &str = "the IPFS gateway";

/// http:// or https:// (system roots), HTTP/1.1.
type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The playlists of an IPFS sink, by key (`stream.m3u8`, `<variant>/stream.m3u8`), for the web
/// side to serve.
#[derive(Default)]
pub struct IpfsPlaylists {
    by_key: Mutex<HashMap<String, Bytes>>,
}

impl IpfsPlaylists {
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.lock().get(key).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bytes>> {
        self.by_key.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct IpfsSink {
    client: HttpClient,
    api_url: String,
    gateway_url: String,
    /// The CID each stored file was added as (to unpin it when it leaves the window).
    cids: Mutex<HashMap<String, String>>,
    playlists: Arc<IpfsPlaylists>,
}

/// What `/api/v0/add` answers for the file.
#[derive(Deserialize)]
struct Added {
    #[serde(rename = "Hash")]
    hash: String,
}

/// How the node explains a refusal.
#[derive(Deserialize)]
struct NodeError {
    #[serde(rename = "Message")]
    message: String,
}

impl IpfsSink {
    /// Fails only when the system's CA certificates cannot be read (needed for https URLs).
    pub fn new(config: &IpfsConfig) -> Result<Self, SinkError> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| SinkError(format!("cannot read the system's CA certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(IpfsSink {
            client: Client::builder(TokioExecutor::new()).build(connector),
            api_url: config.api_url.trim_end_matches('/').to_string(),
            gateway_url: config.gateway_url.clone(),
            cids: Mutex::new(HashMap::new()),
            playlists: Arc::new(IpfsPlaylists::default()),
        })
    }

    /// The playlists this sink keeps, for the web side.
    pub fn playlists(&self) -> Arc<IpfsPlaylists> {
        Arc::clone(&self.playlists)
    }

    /// A playlist is kept for selfcast to serve (its relative names work there); any other
    /// file is added and pinned, and playlists name it by its gateway URL.
    pub async fn put(&self, object: &Object) -> Result<Option<String>, SinkError> {
        if is_playlist(&object.key) {
            self.playlists
                .lock()
                .insert(object.key.clone(), object.body.clone());
            return Ok(None);
        }
        let (content_type, body) = multipart(&object.key, &object.body);
        let answer = self
            .call(
                "add",
                "pin=true&cid-version=1&cid-base=base32",
                Some((content_type, body)),
            )
            .await?;
        // The answer has one JSON line per file added; the file is the last.
        let added: Added = answer
            .split(|&b| b == b'\n')
            .rfind(|line| !line.is_empty())
            .and_then(|line| serde_json::from_slice(line).ok())
            .ok_or_else(|| {
                SinkError(format!(
                    "the IPFS node's answer to add is not understood: {}",
                    String::from_utf8_lossy(&answer[..answer.len().min(200)])
                ))
            })?;
        let url = self.gateway_url_of(&added.hash, &object.key);
        let replaced = self
            .lock_cids()
            .insert(object.key.clone(), added.hash.clone());
        if let Some(old) = replaced.filter(|old| *old != added.hash) {
            self.unpin_unless_used(&old, &object.key).await?;
        }
        Ok(Some(url))
    }

    /// Forgets a playlist, or unpins a file (unless another stored file has the same content).
    pub async fn delete(&self, key: &str) -> Result<(), SinkError> {
        if is_playlist(key) {
            self.playlists.lock().remove(key);
            return Ok(());
        }
        let Some(cid) = self.lock_cids().get(key).cloned() else {
            return Ok(());
        };
        // Forgotten only once unpinned, so that a failed delete is tried again for real.
        self.unpin_unless_used(&cid, key).await?;
        self.lock_cids().remove(key);
        Ok(())
    }

    /// The node's API answers, and so does the gateway (viewers would get nothing otherwise).
    pub async fn check(&self) -> Result<(), SinkError> {
        self.call("version", "", None).await?;
        let probe = join_url(&self.gateway_url, &format!("ipfs/{EMPTY_FILE_CID}"));
        match self.request(GATEWAY, Method::GET, &probe, None).await? {
            (status, _) if status.is_success() => Ok(()),
            (status, _) => Err(SinkError(format!(
                "the IPFS gateway answers {probe} with {status}: check gateway_url"
            ))),
        }
    }

    pub fn target(&self) -> String {
        format!("IPFS node {} (gateway {})", self.api_url, self.gateway_url)
    }

    /// The master playlist, as selfcast serves it for this sink.
    pub fn public_master_url(&self) -> String {
        format!("/{IPFS_PLAYLISTS_ROOT}/{MASTER_PLAYLIST_NAME}")
    }

    /// `<gateway_url>/ipfs/<cid>?filename=<name>`: the name (which gateways put in
    /// Content-Disposition) gives the URL the extension players check a segment URL for
    /// (FFmpeg's `allowed_segment_extensions` refuses `/ipfs/<cid>` alone).
    fn gateway_url_of(&self, cid: &str, key: &str) -> String {
        let name = file_name(key);
        join_url(&self.gateway_url, &format!("ipfs/{cid}?filename={name}"))
    }

    /// Unpins `cid` unless a stored file other than `key` has the same content.
    async fn unpin_unless_used(&self, cid: &str, key: &str) -> Result<(), SinkError> {
        let used_elsewhere = self
            .lock_cids()
            .iter()
            .any(|(other, used)| used == cid && other != key);
        if used_elsewhere {
            return Ok(());
        }
        match self
            .call("pin/rm", &format!("arg={cid}&cid-base=base32"), None)
            .await
        {
            // Unpinned already (a retried delete, or a node that lost its repo): nothing to do.
            Err(SinkError(message)) if message.contains("not pinned") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// `POST <api_url>/api/v0/<command>?<query>` (the RPC API takes POST only); the answer's
    /// body, or what went wrong in plain words.
    async fn call(
        &self,
        command: &str,
        query: &str,
        body: Option<(String, Bytes)>,
    ) -> Result<Bytes, SinkError> {
        let uri = format!("{}/api/v0/{command}?{query}", self.api_url);
        let (status, answer) = self.request(NODE_API, Method::POST, &uri, body).await?;
        if status.is_success() {
            return Ok(answer);
        }
        Err(SinkError(refusal(command, status, &answer)))
    }

    /// One request to `server` (for messages) with a time limit; the status and body, or why
    /// there is none.
    async fn request(
        &self,
        server: &str,
        method: Method,
        uri: &str,
        body: Option<(String, Bytes)>,
    ) -> Result<(StatusCode, Bytes), SinkError> {
        let mut request = Request::builder().method(method).uri(uri);
        let body = match body {
            Some((content_type, body)) => {
                request = request.header(CONTENT_TYPE, content_type);
                body
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .map_err(|e| SinkError(format!("bad URL for {server} {uri:?}: {e}")))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let cause = root_cause(&e);
                SinkError(format!("cannot reach {server} at {}: {cause}", origin(uri)))
            })?;
            let status = response.status();
            let body =
                response.into_body().collect().await.map_err(|e| {
                    SinkError(format!("{server} at {uri}: the answer broke off: {e}"))
                })?;
            Ok((status, body.to_bytes()))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(SinkError(format!(
                    "{server} at {} did not answer within {} s",
                    origin(uri),
                    REQUEST_TIMEOUT.as_secs()
                )))
            })
    }

    fn lock_cids(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.cids.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `scheme://host:port` of `uri`, for messages.
fn origin(uri: &str) -> &str {
    let after_scheme = uri.find("://").map_or(0, |i| i + 3);
    match uri[after_scheme..].find('/') {
        Some(slash) => &uri[..after_scheme + slash],
        None => uri,
    }
}

/// `seg-3.m4s` of `720p/seg-3.m4s` (store names are URL-safe: letters, digits, `-`, `.`).
fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Why the node refused `command`, in plain words.
fn refusal(command: &str, status: StatusCode, answer: &[u8]) -> String {
    let said = serde_json::from_slice::<NodeError>(answer)
        .map(|e| e.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&answer[..answer.len().min(200)]).into());
    match status {
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => format!(
            "the IPFS node refused {command} ({status}): is api_url the node's RPC API, and does \
             it let selfcast in? {said}"
        ),
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
            format!("{command} is not an IPFS RPC API call there ({status}): check api_url {said}")
        }
        _ => format!("the IPFS node refused {command} ({status}): {said}"),
    }
}

/// A `multipart/form-data` body with `data` as the one file (the RPC API wants a content type
/// on every part); returns the request's content type and the body.
fn multipart(name: &str, data: &Bytes) -> (String, Bytes) {
    // A boundary only has to be absent from the data; without randomness, "selfcast-" alone
    // is as good as any.
    let boundary = format!("selfcast-{}", random_token(24).unwrap_or_default());
    let file_name = file_name(name);
    let mut body = Vec::with_capacity(data.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={boundary}"),
        Bytes::from(body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_wraps_the_file_in_one_typed_part() {
        let (content_type, body) = multipart("720p/seg-3.m4s", &Bytes::from_static(b"\0moof"));
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        assert!(boundary.starts_with("selfcast-") && boundary.len() == 9 + 24);
        let expected = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"seg-3.m4s\"\r\nContent-Type: application/octet-stream\r\n\r\n\
             \0moof\r\n--{boundary}--\r\n"
        );
        assert_eq!(body, expected.as_bytes());
    }

    #[test]
    fn refusals_say_what_the_node_said() {
        let said = refusal(
            "pin/rm",
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"Message":"bafy is not pinned","Code":0,"Type":"error"}"#,
        );
        assert_eq!(
            said,
            "the IPFS node refused pin/rm (500 Internal Server Error): bafy is not pinned"
        );
        let forbidden = refusal("add", StatusCode::FORBIDDEN, b"403 - Forbidden");
        assert!(forbidden.contains("403 Forbidden") && forbidden.ends_with("403 - Forbidden"));
    }

    #[test]
    fn messages_name_the_server_not_the_path() {
        assert_eq!(
            origin("http://127.0.0.1:5001/api/v0/add?pin=true"),
            "http://127.0.0.1:5001"
        );
        assert_eq!(
            origin("https://ipfs.example.com"),
            "https://ipfs.example.com"
        );
    }

    #[tokio::test]
    async fn a_failed_unpin_is_tried_again_for_real() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let api_url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let sink = IpfsSink::new(&IpfsConfig {
            api_url,
            gateway_url: "http://127.0.0.1:9".into(),
        })
        .unwrap();
        let cid = "bafkreiffuhdb56z2sj22wagai3c26upr7adnglo2na2ols3yayiqay7msq".to_string();
        sink.lock_cids().insert("0/seg-1.m4s".into(), cid.clone());
        sink.lock_cids().insert("1/seg-1.m4s".into(), cid);
        // The same content is still stored under another key: nothing to unpin yet.
        sink.delete("0/seg-1.m4s").await.unwrap();
        for _ in 0..2 {
            let error = sink.delete("1/seg-1.m4s").await.unwrap_err();
            assert!(error
                .0
                .starts_with("cannot reach the IPFS node at http://127.0.0.1:"));
        }
        assert_eq!(sink.lock_cids().len(), 1);
    }

    #[tokio::test]
    async fn playlists_stay_with_selfcast() {
        let sink = IpfsSink::new(&IpfsConfig::default()).unwrap();
        let playlist = Object {
            key: "720p/stream.m3u8".into(),
            body: Bytes::from_static(b"#EXTM3U\n"),
            content_type: "application/vnd.apple.mpegurl",
            cache_control: "no-cache",
        };
        assert_eq!(sink.put(&playlist).await.unwrap(), None);
        assert_eq!(
            sink.playlists().get("720p/stream.m3u8").unwrap(),
            "#EXTM3U\n"
        );
        sink.delete("720p/stream.m3u8").await.unwrap();
        assert_eq!(sink.playlists().get("720p/stream.m3u8"), None);
        assert_eq!(sink.public_master_url(), "/hls-ipfs/stream.m3u8");
    }
}

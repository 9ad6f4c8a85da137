//! A real S3 server for the storage tests: moto (`moto_server`, pinned and installed by
//! `ci/lib.sh`'s `ensure_moto`) as a child process on a free port, killed on drop, plus the few
//! unsigned requests the tests make to it (create a bucket, list keys, fetch an object, turn on
//! signature checks with an IAM user's key).
//!
//! moto accepts any credentials until `/moto-api/reset-auth` turns checks on, and keeps
//! everything in memory: a restarted moto has no buckets.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{agent, free_port, http_get, poll_until, tail, Resp};

pub const MOTO_VERSION: &str = "5.2.1";

/// `$SELFCAST_MOTO_VENV/bin/moto_server`, else `target/tools/moto-<version>/bin/moto_server`
/// (where `ci/lib.sh` installs it). Panics, saying how to install it, when it is missing: the
/// storage tests never skip themselves.
pub fn moto_server_bin() -> PathBuf {
    let venv = match std::env::var_os("SELFCAST_MOTO_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("tools")
            .join(format!("moto-{MOTO_VERSION}")),
    };
    let bin = venv.join("bin").join("moto_server");
    if !bin.is_file() {
        panic!(
            "moto_server (the S3 server these tests run against) is not installed at {}.\n\
             Install it with:\n    bash -c 'cd {} && source ci/lib.sh && ensure_moto'\n\
             (ci/test does this before `cargo test`; SELFCAST_MOTO_VENV=DIR uses DIR/bin/moto_server)",
            bin.display(),
            env!("CARGO_MANIFEST_DIR"),
        );
    }
    bin
}

/// A running `moto_server -H 127.0.0.1 -p PORT`, killed on drop (its log tail is printed when
/// the test is failing).
pub struct Moto {
    child: Option<Child>,
    pub port: u16,
    pub name: String,
    pub log_path: PathBuf,
    _dir: tempfile::TempDir,
    /// How many times this instance was started (a restart appends to the same log).
    starts: u32,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers.
    pub fn start(name: &str) -> Moto {
        Moto::start_on(name, free_port())
    }

    /// Starts moto on `port` and waits (≤ 30 s) until it answers.
    pub fn start_on(name: &str, port: u16) -> Moto {
        let dir = tempfile::Builder::new()
            .prefix("selfcast-moto-")
            .tempdir()
            .expect("tempdir");
        let log_path = dir.path().join("moto.log");
        let mut moto = Moto {
            child: None,
            port,
            name: name.to_string(),
            log_path,
            _dir: dir,
            starts: 0,
        };
        moto.spawn_and_wait();
        moto
    }

    fn spawn_and_wait(&mut self) {
        let bin = moto_server_bin();
        self.starts += 1;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open moto log");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup moto log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        self.child = Some(child);
        let started = Instant::now();
        let ready = poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Some(Err(status));
            }
            match http_get(&self.url("/")) {
                Ok(_) => Some(Ok(())),
                Err(_) => None,
            }
        });
        match ready {
            Some(Ok(())) => eprintln!(
                "[moto {}] up on port {} in {:.1}s (start #{})",
                self.name,
                self.port,
                started.elapsed().as_secs_f64(),
                self.starts
            ),
            Some(Err(status)) => panic!(
                "moto_server ({}) exited at start-up with {status} on port {}\n{}",
                self.name,
                self.port,
                tail(&self.log_path, 40)
            ),
            None => panic!(
                "moto_server ({}) did not answer on port {} within 30 s\n{}",
                self.name,
                self.port,
                tail(&self.log_path, 40)
            ),
        }
    }

    /// Kills moto (all its state goes with it).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("[moto {}] stopped (port {})", self.name, self.port);
        }
    }

    /// Starts moto again on the same port (empty: no buckets).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn_and_wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint())
    }

    /// Path-style URL of `bucket` (what `public_base_url` is in the tests).
    pub fn bucket_url(&self, bucket: &str) -> String {
        self.url(&format!("/{bucket}"))
    }

    /// Creates `bucket` with an unsigned PUT (moto accepts it while auth checks are off).
    pub fn create_bucket(&self, bucket: &str) {
        let url = self.bucket_url(bucket);
        let r = agent()
            .put(&url)
            .set("Content-Type", "application/xml")
            .send_bytes(b"");
        match r {
            Ok(r) if r.status() == 200 => {}
            Ok(r) => panic!("PUT {url}: HTTP {}", r.status()),
            Err(ureq::Error::Status(code, r)) => panic!(
                "PUT {url} (create bucket): HTTP {code}: {}",
                r.into_string().unwrap_or_default()
            ),
            Err(e) => panic!("PUT {url} (create bucket): {e}"),
        }
    }

    /// An anonymous GET of `key` in `bucket` (any status; `Err` on transport errors).
    pub fn get(&self, bucket: &str, key: &str) -> Result<Resp, String> {
        http_get(&format!("{}/{key}", self.bucket_url(bucket)))
    }

    /// The keys under `prefix` in `bucket` (ListObjectsV2, unsigned), sorted.
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!(
                "{}?list-type=2&max-keys=1000&prefix={}",
                self.bucket_url(bucket),
                query_escape(prefix)
            );
            if let Some(t) = &token {
                url.push_str(&format!("&continuation-token={}", query_escape(t)));
            }
            let r = http_get(&url)?;
            if r.status != 200 {
                return Err(format!("GET {url}: HTTP {}: {}", r.status, r.text()));
            }
            let text = r.text();
            keys.extend(xml_values(&text, "Key"));
            token = xml_values(&text, "NextContinuationToken")
                .into_iter()
                .next();
            if token.is_none()
                || xml_values(&text, "IsTruncated").first().map(String::as_str) != Some("true")
            {
                break;
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// The listing as text for failure messages (never panics).
    pub fn listing_report(&self, bucket: &str, prefix: &str) -> String {
        match self.list_keys(bucket, prefix) {
            Ok(keys) => format!(
                "bucket {bucket} under {prefix:?}: {} keys\n  {}",
                keys.len(),
                keys.join("\n  ")
            ),
            Err(e) => format!("bucket {bucket}: cannot list: {e}"),
        }
    }

    /// An IAM query-API call (`Action=...&Version=2010-05-08`); returns the XML. moto routes a
    /// request to a service by the credential scope of its `Authorization` header (an unsigned
    /// form POST goes to S3), and checks no signature before `reset-auth`: a made-up SigV4
    /// header naming `iam` is enough.
    fn iam(&self, params: &[(&str, &str)]) -> String {
        let mut body = String::new();
        for (k, v) in params.iter().chain([("Version", "2010-05-08")].iter()) {
            if !body.is_empty() {
                body.push('&');
            }
            body.push_str(&format!("{}={}", query_escape(k), query_escape(v)));
        }
        let url = self.url("/");
        match agent()
            .post(&url)
            .set(
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .set(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/iam/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .send_string(&body)
        {
            Ok(r) => r.into_string().unwrap_or_default(),
            Err(ureq::Error::Status(code, r)) => panic!(
                "POST {url} {body}: HTTP {code}: {}",
                r.into_string().unwrap_or_default()
            ),
            Err(e) => panic!("POST {url} {body}: {e}"),
        }
    }

    /// Creates an IAM user allowed everything on S3 and an access key for it, then turns on
    /// moto's signature checks. Returns (access key id, secret key). From then on anonymous
    /// requests fail (moto answers them 500), so this moto is only good for auth tests.
    pub fn enable_auth(&self) -> (String, String) {
        let user = "selfcast-test";
        self.iam(&[("Action", "CreateUser"), ("UserName", user)]);
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", user),
            ("PolicyName", "s3-all"),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            ),
        ]);
        let xml = self.iam(&[("Action", "CreateAccessKey"), ("UserName", user)]);
        let id = xml_values(&xml, "AccessKeyId").into_iter().next();
        let secret = xml_values(&xml, "SecretAccessKey").into_iter().next();
        let (Some(id), Some(secret)) = (id, secret) else {
            panic!("CreateAccessKey answered no key: {xml}");
        };
        let url = self.url("/moto-api/reset-auth");
        match agent()
            .post(&url)
            .set("Content-Type", "text/plain")
            .send_string("0")
        {
            Ok(_) => {}
            Err(ureq::Error::Status(code, r)) => panic!(
                "POST {url}: HTTP {code}: {}",
                r.into_string().unwrap_or_default()
            ),
            Err(e) => panic!("POST {url}: {e}"),
        }
        (id, secret)
    }

    pub fn log(&self) -> String {
        tail(&self.log_path, 40)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "\n==== moto {} (port {}) log tail {} ====\n{}",
                self.name,
                self.port,
                self.log_path.display(),
                self.log()
            );
        }
    }
}

/// The `[storage]` TOML for `kind = "s3"` against moto, path style, public-read objects.
/// `endpoint` is usually [`Moto::endpoint`]; `public_base_url` the bucket's URL.
pub fn s3_storage_toml(
    endpoint: &str,
    bucket: &str,
    prefix: &str,
    public_base_url: &str,
    access_key: &str,
    secret_key: &str,
) -> String {
    format!(
        "\n[storage]\nkind = \"s3\"\n\n[storage.s3]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\
         bucket = \"{bucket}\"\naccess_key = \"{access_key}\"\nsecret_key = \"{secret_key}\"\n\
         path_prefix = \"{prefix}\"\nforce_path_style = true\nacl = \"public-read\"\n\
         public_base_url = \"{public_base_url}\"\n"
    )
}

/// The text of every `<tag>...</tag>` in `xml`, unescaped (enough for S3 and IAM answers).
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(
            after[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    out
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

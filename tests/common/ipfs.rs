//! A real IPFS node for the IPFS storage tests: js-ipfs (npm's `ipfs`, pinned and installed by
//! `ci/lib.sh`'s `ensure_ipfs`) as an offline daemon on loopback, with its own repo in a temp
//! dir and free ports, killed on drop, plus the few requests the tests make to it (add, the
//! recursive pins, a CID's bytes through the gateway).
//!
//! What js-ipfs does that matters here: the RPC API (`/api/v0/...`) takes POST only and answers
//! 403 to any request carrying an `Origin` header; every part of an `add` multipart body needs a
//! `Content-Type` (else 500); `pin/rm` of a CID that is not pinned is a 500; unpinning keeps the
//! blocks until `repo/gc`; and, offline, the gateway waits forever for a CID the node does not
//! have, hence the timeouts. The repo survives a restart (pins included).

use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{agent, free_port, http_get, poll_until, tail, wait_child, Resp};

pub const IPFS_VERSION: &str = "0.66.1";

/// `$SELFCAST_IPFS_DIR/node_modules/ipfs/src/cli.js`, else the same under
/// `target/tools/ipfs-<version>` (where `ci/lib.sh` installs it). Panics, saying how to install
/// it, when it is missing: the IPFS tests never skip themselves.
pub fn ipfs_cli_js() -> PathBuf {
    let dir = match std::env::var_os("SELFCAST_IPFS_DIR") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("tools")
            .join(format!("ipfs-{IPFS_VERSION}")),
    };
    let cli = dir.join("node_modules/ipfs/src/cli.js");
    if !cli.is_file() {
        panic!(
            "js-ipfs (the IPFS node these tests run against) is not installed at {}.\n\
             Install it with:\n    bash -c 'cd {} && source ci/lib.sh && ensure_ipfs'\n\
             (ci/test does this before `cargo test`; SELFCAST_IPFS_DIR=DIR uses \
             DIR/node_modules/ipfs/src/cli.js)",
            cli.display(),
            env!("CARGO_MANIFEST_DIR"),
        );
    }
    cli
}

/// A running `node cli.js daemon --offline` with a repo of its own, killed on drop (its log tail
/// is printed and its temp dir kept when the test is failing).
pub struct IpfsNode {
    child: Option<Child>,
    cli: PathBuf,
    pub name: String,
    pub api_port: u16,
    pub gateway_port: u16,
    rpc_port: u16,
    swarm_port: u16,
    /// `IPFS_PATH`: the repo (blocks, pins, config).
    pub repo: PathBuf,
    /// init's and every daemon start's stdout + stderr.
    pub log_path: PathBuf,
    dir: Option<tempfile::TempDir>,
    /// How many times the daemon was started (a restart appends to the same log).
    starts: u32,
}

impl IpfsNode {
    /// Inits a fresh repo on free ports, starts the daemon and waits (≤ 60 s) until its API
    /// answers. Takes ~10 s (init ~5 s, daemon ~6 s).
    pub fn start(name: &str) -> IpfsNode {
        let cli = ipfs_cli_js();
        let dir = tempfile::Builder::new()
            .prefix("selfcast-ipfs-")
            .tempdir()
            .expect("tempdir");
        let mut node = IpfsNode {
            child: None,
            cli,
            name: name.to_string(),
            api_port: free_port(),
            gateway_port: free_port(),
            rpc_port: free_port(),
            swarm_port: free_port(),
            repo: dir.path().join("repo"),
            log_path: dir.path().join("ipfs.log"),
            dir: Some(dir),
            starts: 0,
        };
        node.init();
        node.spawn_and_wait();
        node
    }

    fn dir(&self) -> PathBuf {
        self.dir.as_ref().expect("temp dir").path().to_path_buf()
    }

    fn log_file(&self) -> fs::File {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open ipfs log")
    }

    fn node_cmd(&self, args: &[&str]) -> Command {
        let log = self.log_file();
        let mut cmd = Command::new("node");
        cmd.arg(&self.cli)
            .args(args)
            .env("IPFS_PATH", &self.repo)
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup ipfs log"))
            .stderr(log);
        cmd
    }

    /// `ipfs init` with loopback addresses on this node's ports, no bootstrap peers, no
    /// discovery, and an empty repo (no welcome files).
    fn init(&mut self) {
        let config = self.dir().join("config.json");
        let json = serde_json::json!({
            "Addresses": {
                "API": format!("/ip4/127.0.0.1/tcp/{}", self.api_port),
                "Gateway": format!("/ip4/127.0.0.1/tcp/{}", self.gateway_port),
                "RPC": format!("/ip4/127.0.0.1/tcp/{}", self.rpc_port),
                "Swarm": [format!("/ip4/127.0.0.1/tcp/{}", self.swarm_port)],
                "Delegates": [],
            },
            "Bootstrap": [],
            "Discovery": {"MDNS": {"Enabled": false}, "webRTCStar": {"Enabled": false}},
        });
        fs::write(&config, json.to_string()).expect("write ipfs config.json");
        let config = config.to_string_lossy().into_owned();
        let started = Instant::now();
        let mut child = self
            .node_cmd(&[
                "init",
                "--emptyRepo",
                "--profile",
                "test",
                "--defaultConfig",
                &config,
            ])
            .spawn()
            .unwrap_or_else(|e| panic!("spawn node (ipfs init): {e}"));
        match wait_child(&mut child, Duration::from_secs(60)) {
            Some(s) if s.success() => eprintln!(
                "[ipfs {}] repo initialised in {:.1}s",
                self.name,
                started.elapsed().as_secs_f64()
            ),
            Some(s) => panic!(
                "ipfs init ({}) exited with {s}\n{}",
                self.name,
                tail(&self.log_path, 40)
            ),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "ipfs init ({}) did not finish within 60 s\n{}",
                    self.name,
                    tail(&self.log_path, 40)
                )
            }
        }
    }

    fn spawn_and_wait(&mut self) {
        self.starts += 1;
        let started = Instant::now();
        let child = self
            .node_cmd(&["daemon", "--offline", "--enable-preload=false"])
            .spawn()
            .unwrap_or_else(|e| panic!("spawn node (ipfs daemon): {e}"));
        self.child = Some(child);
        let ready = poll_until(Duration::from_secs(60), Duration::from_millis(100), || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Some(Err(status));
            }
            agent()
                .post(&self.api("version"))
                .timeout(Duration::from_secs(2))
                .send_bytes(b"")
                .ok()
                .map(|_| Ok(()))
        });
        match ready {
            Some(Ok(())) => eprintln!(
                "[ipfs {}] up: api {} gateway {} in {:.1}s (start #{})",
                self.name,
                self.api_url(),
                self.gateway_url(),
                started.elapsed().as_secs_f64(),
                self.starts
            ),
            Some(Err(status)) => panic!(
                "ipfs daemon ({}) exited at start-up with {status} (api port {})\n{}",
                self.name,
                self.api_port,
                tail(&self.log_path, 40)
            ),
            None => panic!(
                "ipfs daemon ({}) did not answer on {} within 60 s\n{}",
                self.name,
                self.api_url(),
                tail(&self.log_path, 40)
            ),
        }
    }

    /// Kills the daemon (SIGKILL) and waits for it. The repo stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("[ipfs {}] stopped (api port {})", self.name, self.api_port);
        }
    }

    /// Starts the daemon again on the same ports with the same repo (pins and blocks kept).
    pub fn restart(&mut self) {
        self.stop();
        // A killed daemon leaves its lock (`repo.lock/`, a directory) and `api` (its address)
        // behind; with the lock there the next daemon exits "Lock already being held".
        for stale in ["repo.lock", "api"] {
            let p = self.repo.join(stale);
            let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
        }
        self.spawn_and_wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// `http://127.0.0.1:PORT` of the RPC API (what the storage config points at).
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// `http://127.0.0.1:PORT` of the read-only gateway (`/ipfs/<cid>`).
    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.gateway_port)
    }

    fn api(&self, cmd: &str) -> String {
        format!("{}/api/v0/{cmd}", self.api_url())
    }

    /// POST `/api/v0/<cmd_and_query>` with no body; the answer's text when 2xx, else `Err`
    /// with the status and the body (js-ipfs's `{"Message":..}`).
    pub fn rpc(&self, cmd_and_query: &str) -> Result<String, String> {
        let url = self.api(cmd_and_query);
        match agent().post(&url).send_bytes(b"") {
            Ok(r) => r
                .into_string()
                .map_err(|e| format!("POST {url}: reading body: {e}")),
            Err(ureq::Error::Status(code, r)) => Err(format!(
                "POST {url}: HTTP {code}: {}",
                r.into_string().unwrap_or_default()
            )),
            Err(e) => Err(format!("POST {url}: {e}")),
        }
    }

    /// Adds `bytes` as one file, pinned, CIDv1 base32; returns its CID.
    pub fn add(&self, file_name: &str, bytes: &[u8]) -> String {
        let boundary = "selfcast-ipfs-test-boundary-7d3f";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let url = self.api("add?pin=true&cid-version=1&cid-base=base32");
        let text = match agent()
            .post(&url)
            .set(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .send_bytes(&body)
        {
            Ok(r) => r.into_string().unwrap_or_default(),
            Err(ureq::Error::Status(code, r)) => panic!(
                "POST {url}: HTTP {code}: {}",
                r.into_string().unwrap_or_default()
            ),
            Err(e) => panic!("POST {url}: {e}"),
        };
        // One JSON line per file: {"Name":..,"Hash":..,"Size":..}.
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| v["Hash"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("POST {url}: no Hash in {text:?}"))
    }

    /// The recursively pinned CIDs (base32), sorted.
    pub fn pins(&self) -> Vec<String> {
        let text = self
            .rpc("pin/ls?type=recursive&cid-base=base32")
            .unwrap_or_else(|e| panic!("ipfs {}: {e}", self.name));
        let mut cids = Vec::new();
        // js-ipfs answers {"Keys":{"<cid>":{"Type":"recursive"}}} (Kubo's shape); with
        // `stream=true` it is one {"Type":..,"Cid":..} line per pin: take either.
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("ipfs {}: pin/ls: not JSON ({e}): {text}", self.name));
            if let Some(keys) = v["Keys"].as_object() {
                cids.extend(keys.keys().cloned());
            } else if let Some(cid) = v["Cid"].as_str().or(v["Cid"]["/"].as_str()) {
                cids.push(cid.to_string());
            }
        }
        cids.sort();
        cids
    }

    /// GET `/ipfs/<cid>` on the gateway (any status; `Err` on transport errors, and after the
    /// agent's 15 s timeout for a CID the node does not have).
    pub fn gateway_get(&self, cid: &str) -> Result<Resp, String> {
        http_get(&format!("{}/ipfs/{cid}", self.gateway_url()))
    }

    /// The bytes of `cid` through the gateway; `Err` on any status but 200 and after `timeout`
    /// (what asking for a CID the node does not have ends in).
    pub fn try_cat(&self, cid: &str, timeout: Duration) -> Result<Vec<u8>, String> {
        let url = format!("{}/ipfs/{cid}", self.gateway_url());
        match agent().get(&url).timeout(timeout).call() {
            Ok(r) if r.status() == 200 => {
                let mut body = Vec::new();
                r.into_reader()
                    .take(256 << 20)
                    .read_to_end(&mut body)
                    .map_err(|e| format!("GET {url}: reading body: {e}"))?;
                Ok(body)
            }
            Ok(r) => Err(format!("GET {url}: HTTP {}", r.status())),
            Err(ureq::Error::Status(code, r)) => Err(format!(
                "GET {url}: HTTP {code}: {}",
                r.into_string().unwrap_or_default()
            )),
            Err(e) => Err(format!("GET {url}: {e}")),
        }
    }

    /// The bytes of `cid` through the gateway; panics unless it answers 200 within 10 s.
    pub fn cat(&self, cid: &str) -> Vec<u8> {
        self.try_cat(cid, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("ipfs {}: cat {cid}: {e}", self.name))
    }

    pub fn log(&self) -> String {
        tail(&self.log_path, 40)
    }
}

impl Drop for IpfsNode {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "\n==== ipfs {} (api port {}) log tail {} ====\n{}",
                self.name,
                self.api_port,
                self.log_path.display(),
                self.log()
            );
            if let Some(t) = self.dir.take() {
                eprintln!("(kept the ipfs node's temp dir: {})", t.keep().display());
            }
        }
    }
}

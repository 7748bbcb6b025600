//! Plain HTTP (and `git://`) only to hosts named by `--plain-http`: one rule in the HTTP layer and the git
//! remote, for every service. A refused endpoint is exit 2 naming the flag, and nothing is sent to it.

use crate::harness::{SENTINEL, flowship, host_of, svc};
use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

/// A port that records whether anyone connected (and what they sent first).
struct Witness {
    listener: TcpListener,
}

impl Witness {
    fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Self { listener }
    }

    fn addr(&self) -> String {
        self.listener.local_addr().unwrap().to_string()
    }

    /// Bytes of every connection made so far.
    fn received(&self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok((mut s, _)) = self.listener.accept() {
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            out.push(String::from_utf8_lossy(&buf).into_owned());
        }
        out
    }
}

#[test]
fn prefect_credentials_never_go_over_unlisted_plain_http() {
    let w = Witness::new();
    for cmd in [&["doctor"][..], &["register", "--all"][..]] {
        let f = flowship();
        f.file(
            "prefect.yaml",
            "deployments:\n- name: d\n  entrypoint: flows/x.py:f\n  work_pool: {name: p}\n",
        );
        f.file(
            "flows/x.py",
            "from prefect import flow\n@flow\ndef f():\n    pass\n",
        );
        let o = f
            .in_scratch_dir()
            .env("PREFECT_API_URL", format!("http://{}/api", w.addr()))
            .env("PREFECT_API_AUTH_STRING", format!("admin:{SENTINEL}"))
            .args(cmd)
            .run();
        o.code(2)
            .stderr_has(&format!("--plain-http {}", w.addr()))
            .stderr_has("FLOWSHIP_PLAIN_HTTP");
    }
    assert!(
        w.received().is_empty(),
        "something was sent to the unlisted host"
    );
}

#[test]
fn a_listed_plain_host_is_spoken_to() {
    let url = svc("PREFECT_PLAIN");
    flowship()
        .without_plain_http()
        .env("PREFECT_API_URL", &url)
        .args(["--plain-http", &host_of(&url), "doctor"])
        .run()
        .success();
}

#[test]
fn git_over_git_protocol_or_plain_http_needs_listing() {
    for repo in [
        format!("{}/gitops.git", svc("GIT_DAEMON")),
        format!("{}/gitops.git", svc("GIT_HTTP")),
    ] {
        let o = flowship()
            .without_plain_http()
            .env("FLOWSHIP_GIT_TOKEN", SENTINEL)
            .args([
                "bump",
                "--repo",
                &repo,
                "--image",
                "h.example.com/f/etl",
                "--tag",
                "1",
            ])
            .run();
        o.code(2)
            .stderr_has(&format!("--plain-http {}", host_of(&repo)));
    }
}

#[test]
fn a_token_realm_on_an_unlisted_plain_host_is_refused() {
    // The registry is listed; the token service it names is not.
    let reg = svc("REGISTRY_TOKEN");
    let o = flowship()
        .without_plain_http()
        .env("FLOWSHIP_PLAIN_HTTP", &reg)
        .env("FLOWSHIP_IMAGE", format!("{reg}/flows/etl"))
        .env("FLOWSHIP_REGISTRY_USERNAME", svc("ROBOT_USER"))
        .env("FLOWSHIP_REGISTRY_PASSWORD", svc("ROBOT_PASS"))
        .args(["doctor"])
        .run();
    o.code(2)
        .stdout_has(&host_of(&svc("TOKEN_SERVICE")))
        .stderr_has("--plain-http");
    // Under --output json the report is stdout's one document; the refusal after it goes to stderr only.
    let o = flowship()
        .without_plain_http()
        .env("FLOWSHIP_PLAIN_HTTP", &reg)
        .env("FLOWSHIP_IMAGE", format!("{reg}/flows/etl"))
        .env("FLOWSHIP_REGISTRY_USERNAME", svc("ROBOT_USER"))
        .env("FLOWSHIP_REGISTRY_PASSWORD", svc("ROBOT_PASS"))
        .args(["doctor", "--output", "json"])
        .run();
    o.code(2).stderr_has("--plain-http");
    assert_eq!(o.json()["ok"], false, "{o}");
}

#[test]
fn other_schemes_are_not_http() {
    flowship()
        .env("PREFECT_API_URL", "ftp://prefect.example.com/api")
        .args(["settings"])
        .run()
        .code(2)
        .stderr_has("is not an http(s) URL");
}

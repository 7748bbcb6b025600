//! A registry credential goes to that registry (and the token realm it names) only: never to another host an
//! upload is redirected to, never to another registry of the same command (issue 8, item 7).

use crate::harness::{flowship, svc};
use crate::images::umoci_layout;
use crate::proxy::{self, Fault};
use base64::Engine;

fn token() -> String {
    format!("{:x}", fastrand::u32(..))
}

#[test]
fn an_upload_location_on_another_origin_gets_no_credentials() {
    let proxy = proxy::start_with(&svc("REGISTRY_AUTH"), Fault::LocationElsewhere);
    let elsewhere = proxy.addr.replace("127.0.0.1", "localhost");
    let dir = tempfile::tempdir().unwrap();
    let layout = umoci_layout(dir.path(), "v1");
    let user = svc("REGISTRY_USER");
    let o = flowship()
        .env("FLOWSHIP_PLAIN_HTTP", format!("{},{elsewhere}", proxy.addr))
        .env("FLOWSHIP_REGISTRY_USERNAME", &user)
        .env("FLOWSHIP_REGISTRY_PASSWORD", svc("REGISTRY_PASS"))
        .env("FLOWSHIP_HTTP_RETRIES", "0")
        .args([
            "push",
            "--from",
            &format!("oci-layout:{}:v1", layout.display()),
            "--image",
            &format!("{}/it/loc-{}", proxy.addr, token()),
            "--tag",
            "v1",
        ])
        .run();
    // The registry refuses an upload without credentials: the push fails, and says so.
    assert_ne!(o.code, 0, "{o}");
    let seen = proxy.seen();
    let moved: Vec<_> = seen
        .iter()
        .filter(|s| s.host.starts_with("localhost"))
        .collect();
    assert!(
        !moved.is_empty(),
        "no upload went to the other origin: {seen:?}"
    );
    assert!(
        moved.iter().all(|s| s.auth.is_none()),
        "credentials went to another origin: {moved:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.host.starts_with("127.0.0.1") && s.auth.as_deref() == Some(user.as_str())),
        "{seen:?}"
    );
}

#[test]
fn promote_gives_each_registry_its_own_credentials() {
    let (src_reg, user, pass) = (
        svc("REGISTRY_AUTH"),
        svc("REGISTRY_USER"),
        svc("REGISTRY_PASS"),
    );
    let dir = tempfile::tempdir().unwrap();
    let layout = umoci_layout(dir.path(), "v1");
    let src = format!("{src_reg}/it/promo-{}", token());
    flowship()
        .env("FLOWSHIP_PLAIN_HTTP", &src_reg)
        .env("FLOWSHIP_REGISTRY_USERNAME", &user)
        .env("FLOWSHIP_REGISTRY_PASSWORD", &pass)
        .args([
            "push",
            "--from",
            &format!("oci-layout:{}:v1", layout.display()),
            "--image",
            &src,
            "--tag",
            "v1",
        ])
        .run()
        .success();

    // The destination Harbor sits behind a recording proxy; the source's credentials come from Docker's
    // config for its host, the robot's are the explicit ones (they belong to the destination).
    let harbor = proxy::start_with(&svc("HARBOR"), Fault::None);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let project = format!("promo{}", token());
    let o = flowship()
        .env("FLOWSHIP_PLAIN_HTTP", format!("{src_reg},{}", harbor.addr))
        .env("FLOWSHIP_IMAGE", &src)
        .env(
            "DOCKER_AUTH_CONFIG",
            format!(r#"{{"auths":{{"{src_reg}":{{"auth":"{auth}"}}}}}}"#),
        )
        .env("FLOWSHIP_REGISTRY_USERNAME", svc("ROBOT_USER"))
        .env("FLOWSHIP_REGISTRY_PASSWORD", svc("ROBOT_PASS"))
        .args([
            "promote",
            &format!("{src}:v1"),
            &format!("{}/{project}/etl:v1", harbor.addr),
            "--create-project",
            "--scan-gate",
            "critical",
        ])
        .run();
    o.success();
    let seen = harbor.seen();
    let robot = svc("ROBOT_USER");
    assert!(
        seen.iter().any(|s| s.line.contains("/api/v2.0/projects")),
        "{seen:?}"
    );
    for s in &seen {
        if let Some(who) = &s.auth {
            assert_eq!(
                who, &robot,
                "the destination got another registry's credentials: {s:?}"
            );
        }
    }
}

/// `robot$ci+prefect` through an expanding shell or GitLab variable arrives as `robot+prefect`: flowship says
/// so instead of blaming permissions (issue 8, item 5).
#[test]
fn a_robot_name_that_lost_its_dollar_is_named() {
    let reg = svc("REGISTRY_AUTH");
    let dir = tempfile::tempdir().unwrap();
    let layout = umoci_layout(dir.path(), "v1");
    flowship()
        .env("FLOWSHIP_PLAIN_HTTP", &reg)
        .env("FLOWSHIP_REGISTRY_USERNAME", "robot+prefect")
        .env("FLOWSHIP_REGISTRY_PASSWORD", svc("ROBOT_PASS"))
        .env("FLOWSHIP_HTTP_RETRIES", "0")
        .args([
            "push",
            "--from",
            &format!("oci-layout:{}:v1", layout.display()),
            "--image",
            &format!("{reg}/ci/etl"),
            "--tag",
            "v1",
        ])
        .run()
        .code(1)
        .stderr_has("robot$")
        .stderr_has("FLOWSHIP_REGISTRY_USERNAME_FILE")
        .stderr_has("Expand variable reference");
}

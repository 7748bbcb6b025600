//! `flowship bump` against the real git servers: git daemon, and smart HTTP(S) with basic auth.

use crate::harness::{SENTINEL, flowship, seeded, svc};
use std::path::Path;
use std::process::Command;

pub(crate) use crate::harness::git;

fn release(app: &str, tag: &str) -> String {
    format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: {app}\nspec:\n  values:\n    # the flow image\n    image:\n      repository: harbor.example.com/flows/{app}\n      tag: \"{tag}\"  # keep me\n\n    pullPolicy: IfNotPresent\n"
    )
}

pub(crate) fn file_at_head(bare: &Path, file: &str) -> String {
    git(bare, &["show", &format!("main:{file}")])
}

#[test]
fn bump_commits_once_and_a_rerun_changes_nothing() {
    let (name, bare) = seeded(&[("apps/etl/release.yaml", release("etl", "1.0.0"))]);
    let repo = format!("{}/{name}", svc("GIT_DAEMON"));
    let before = git(&bare, &["rev-parse", "main"]);
    let o = flowship()
        .env("GITLAB_USER_NAME", "Release Bot")
        .env("GITLAB_USER_EMAIL", "bot@example.com")
        .env(
            "CI_PIPELINE_URL",
            "https://gitlab.example.com/g/etl/-/pipelines/42",
        )
        .args([
            "bump",
            "--repo",
            &repo,
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.1.0",
            "--output",
            "json",
        ])
        .run();
    let doc = o.success().json();
    assert_eq!(doc["gitops"]["changes"][0]["path"], "spec.values.image.tag");
    assert_eq!(doc["gitops"]["changes"][0]["old"], "1.0.0");
    assert_eq!(doc["gitops"]["changes"][0]["new"], "1.1.0");
    let commit = doc["gitops"]["commit"].as_str().unwrap().to_string();
    assert_eq!(git(&bare, &["rev-parse", "main"]), commit);
    assert_eq!(git(&bare, &["rev-parse", "main~1"]), before);
    assert_eq!(
        file_at_head(&bare, "apps/etl/release.yaml"),
        release("etl", "1.1.0").trim_end()
    );
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%an <%ae>"]),
        "Release Bot <bot@example.com>"
    );
    assert!(
        git(&bare, &["log", "-1", "--format=%B"])
            .contains("Pipeline: https://gitlab.example.com/g/etl/-/pipelines/42")
    );

    let o = flowship()
        .args([
            "bump",
            "--repo",
            &repo,
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.1.0",
        ])
        .run();
    o.success().stderr_has("nothing to change");
    assert_eq!(
        git(&bare, &["rev-parse", "main"]),
        commit,
        "a no-op must not commit"
    );
}

#[test]
fn dry_run_prints_a_diff_and_writes_nothing() {
    let (name, bare) = seeded(&[("a.yaml", release("etl", "1.0.0"))]);
    let head = git(&bare, &["rev-parse", "main"]);
    let o = flowship()
        .args([
            "bump",
            "--dry-run",
            "--repo",
            &format!("{}/{name}", svc("GIT_DAEMON")),
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "2.0.0",
        ])
        .run();
    o.success()
        .stdout_has("--- a/a.yaml")
        .stdout_has("-      tag: \"1.0.0\"  # keep me")
        .stdout_has("+      tag: \"2.0.0\"  # keep me");
    assert_eq!(git(&bare, &["rev-parse", "main"]), head);
}

#[test]
fn https_with_token_and_ca_and_dotenv() {
    let (name, bare) = seeded(&[("a.yaml", release("etl", "1.0.0"))]);
    let keep = tempfile::tempdir().unwrap();
    let dotenv = keep.path().join("gitops.env");
    let o = flowship()
        .env("FLOWSHIP_GIT_TOKEN", svc("GIT_TOKEN"))
        .env("FLOWSHIP_CA_FILE", svc("CA"))
        .args([
            "bump",
            "--repo",
            &format!("{}/{name}", svc("GIT_HTTPS")),
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.2.0",
        ])
        .args(["--dotenv", dotenv.to_str().unwrap()])
        .run();
    o.success();
    let head = git(&bare, &["rev-parse", "main"]);
    assert_eq!(
        std::fs::read_to_string(&dotenv).unwrap(),
        format!("FLOWSHIP_GITOPS_COMMIT={head}\n")
    );
}

#[test]
fn wrong_token_is_one_clear_error_without_retry_loop() {
    let (name, _) = seeded(&[("a.yaml", release("etl", "1.0.0"))]);
    let o = flowship()
        .env("FLOWSHIP_GIT_TOKEN", SENTINEL)
        .args([
            "bump",
            "--repo",
            &format!("{}/{name}", svc("GIT_HTTP")),
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.2.0",
        ])
        .run();
    o.code(1)
        .stderr_has("credentials rejected")
        .stderr_has("hint: check FLOWSHIP_GIT_TOKEN");
    // libgit2 asks for credentials again after every 401; flowship answers once, so the server saw the
    // token exactly once.
    let with_token: Vec<_> = crate::harness::git_http_requests(&name)
        .into_iter()
        .filter(|(u, _)| u == "oauth2")
        .collect();
    assert_eq!(
        with_token,
        [("oauth2".to_string(), 401)],
        "the rejected token was sent more than once"
    );
}

#[test]
fn digest_pinned_value_is_refused_with_exit_2_and_nothing_pushed() {
    let pinned = "spec:\n  containers:\n    - image: harbor.example.com/flows/etl:1.0.0@sha256:1111111111111111111111111111111111111111111111111111111111111111\n";
    let (name, bare) = seeded(&[("d.yaml", pinned.to_string())]);
    let head = git(&bare, &["rev-parse", "main"]);
    let o = flowship()
        .args([
            "bump",
            "--repo",
            &format!("{}/{name}", svc("GIT_DAEMON")),
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.1.0",
        ])
        .run();
    o.code(2)
        .stderr_has("d.yaml:3")
        .stderr_has("pinned to digest")
        .stderr_has("hint: pass --digest");
    assert_eq!(git(&bare, &["rev-parse", "main"]), head);
    let digest = format!("sha256:{}", "2".repeat(64));
    flowship()
        .args([
            "bump",
            "--repo",
            &format!("{}/{name}", svc("GIT_DAEMON")),
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.1.0",
            "--digest",
            &digest,
        ])
        .run()
        .success();
    assert!(file_at_head(&bare, "d.yaml").contains(&format!("etl:1.1.0@{digest}")));
}

#[test]
fn bad_tag_is_a_usage_error() {
    flowship()
        .args([
            "bump",
            "--repo",
            "git://127.0.0.1:9/x.git",
            "--image",
            "h.example.com/a/b",
            // `=`: clap would read `--tag -bad` as a missing value, never reaching flowship's own check.
            "--tag=-bad",
        ])
        .run()
        .code(2)
        .stderr_has("`-bad` is not a valid tag")
        .stderr_has("not starting with");
    flowship()
        .args([
            "bump",
            "--repo",
            "git://127.0.0.1:9/x.git",
            "--image",
            "h.example.com/a/b",
        ])
        .run()
        .code(2);
}

/// 16 pipelines bump 16 different apps in one repository at the same moment: every bump lands, history stays
/// linear, no process fails.
/// Each transport a GitOps repo can be reached by, with what it needs.
/// A transport: the repository URL for (name, bare path), and the variables it needs.
type UrlOf = Box<dyn Fn(&str, &Path) -> (String, Vec<(String, String)>)>;

fn transports() -> Vec<(&'static str, UrlOf)> {
    vec![
        (
            "local path",
            Box::new(|_, bare: &Path| (bare.display().to_string(), vec![])),
        ),
        (
            "file://",
            Box::new(|_, bare: &Path| (format!("file://{}", bare.display()), vec![])),
        ),
        (
            "git://",
            Box::new(|name: &str, _: &Path| (format!("{}/{name}", svc("GIT_DAEMON")), vec![])),
        ),
        (
            "https",
            Box::new(|name: &str, _: &Path| {
                (
                    format!("{}/{name}", svc("GIT_HTTPS")),
                    vec![
                        ("FLOWSHIP_GIT_TOKEN".into(), svc("GIT_TOKEN")),
                        ("FLOWSHIP_CA_FILE".into(), svc("CA")),
                    ],
                )
            }),
        ),
        (
            "ssh",
            Box::new(|name: &str, _: &Path| {
                (
                    format!("{}/{name}", svc("GIT_SSH")),
                    vec![
                        ("FLOWSHIP_GIT_SSH_KEY_FILE".into(), svc("SSH_KEY")),
                        (
                            "FLOWSHIP_GIT_SSH_KNOWN_HOSTS".into(),
                            svc("SSH_KNOWN_HOSTS"),
                        ),
                    ],
                )
            }),
        ),
    ]
}

/// No concurrent bump is lost, on any transport (issue 8, item 1): 16 writers at once, one app each, three
/// rounds per transport. Every process that exits 0 has its change on the branch, and all of them do.
fn sixteen_concurrent_bumps_all_land(which: &str) {
    let apps: Vec<String> = (0..16).map(|i| format!("app{i:02}")).collect();
    for (transport, url_of) in transports().into_iter().filter(|(t, _)| *t == which) {
        for round in 0..3 {
            let files: Vec<(String, String)> = apps
                .iter()
                .map(|a| (format!("apps/{a}/release.yaml"), release(a, "1.0.0")))
                .collect();
            let refs: Vec<(&str, String)> =
                files.iter().map(|(f, c)| (f.as_str(), c.clone())).collect();
            let (name, bare) = seeded(&refs);
            let (repo, env) = url_of(&name, &bare);
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(apps.len()));
            let handles: Vec<_> = apps
                .iter()
                .map(|a| {
                    let (a, repo, env, barrier) =
                        (a.clone(), repo.clone(), env.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let mut f = flowship();
                        for (k, v) in &env {
                            f = f.env(k, v);
                        }
                        barrier.wait();
                        let o = f
                            .args([
                                "bump",
                                "--repo",
                                &repo,
                                "--image",
                                &format!("harbor.example.com/flows/{a}"),
                                "--tag",
                                "2.0.0",
                            ])
                            .run();
                        (a, o)
                    })
                })
                .collect();
            let mut landed = 0;
            for h in handles {
                let (a, o) = h.join().unwrap();
                assert_eq!(o.code, 0, "{transport}, round {round}: {o}");
                assert!(
                    file_at_head(&bare, &format!("apps/{a}/release.yaml"))
                        .contains("tag: \"2.0.0\""),
                    "{transport}, round {round}: {a} exited 0 but its bump is not on the branch"
                );
                landed += 1;
            }
            assert_eq!(landed, apps.len());
            assert_eq!(
                git(&bare, &["rev-list", "--merges", "--count", "main"]),
                "0",
                "history must stay linear"
            );
            assert_eq!(
                git(&bare, &["rev-list", "--count", "main"]),
                "17",
                "{transport}: one commit per bump"
            );
        }
    }
}

#[test]
fn sixteen_concurrent_bumps_all_land_over_a_local_path() {
    sixteen_concurrent_bumps_all_land("local path");
}

#[test]
fn sixteen_concurrent_bumps_all_land_over_file_urls() {
    sixteen_concurrent_bumps_all_land("file://");
}

#[test]
fn sixteen_concurrent_bumps_all_land_over_git_daemon() {
    sixteen_concurrent_bumps_all_land("git://");
}

#[test]
fn sixteen_concurrent_bumps_all_land_over_https() {
    sixteen_concurrent_bumps_all_land("https");
}

#[test]
fn sixteen_concurrent_bumps_all_land_over_ssh() {
    sixteen_concurrent_bumps_all_land("ssh");
}

#[test]
fn explicit_target_and_environment_sets() {
    let worker = "worker:\n  image:\n    repository: harbor.example.com/flows/etl\n    prefectTag: \"1.0.0\"\n";
    let (name, bare) = seeded(&[
        ("apps/prod/worker.yaml", worker.into()),
        ("apps/staging/worker.yaml", worker.into()),
    ]);
    let repo = format!("{}/{name}", svc("GIT_DAEMON"));
    // --target edits exactly that value, nothing else that matches.
    flowship()
        .args([
            "bump",
            "--repo",
            &repo,
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.1.0",
        ])
        .args([
            "--target",
            "apps/staging/worker.yaml:worker.image.prefectTag",
        ])
        .run()
        .success();
    assert!(file_at_head(&bare, "apps/staging/worker.yaml").contains("prefectTag: \"1.1.0\""));
    assert!(file_at_head(&bare, "apps/prod/worker.yaml").contains("prefectTag: \"1.0.0\""));

    // An environment from flowship.yaml, chosen by GitLab's CI_ENVIRONMENT_NAME.
    let f = flowship().in_scratch_dir();
    f.file(
        "flowship.yaml",
        &format!(
            "image:\n  repository: harbor.example.com/flows/etl\ngitops:\n  repo: {repo}\n  environments:\n    prod:\n      targets: [\"apps/prod/worker.yaml:worker.image.prefectTag\"]\n"
        ),
    );
    let doc = f
        .env("CI_ENVIRONMENT_NAME", "prod")
        .args(["bump", "--tag", "2.0.0", "--output", "json"])
        .run()
        .success()
        .json();
    assert_eq!(doc["gitops"]["changes"][0]["file"], "apps/prod/worker.yaml");
    assert!(file_at_head(&bare, "apps/prod/worker.yaml").contains("prefectTag: \"2.0.0\""));
    assert!(
        git(&bare, &["log", "-1", "--format=%s"])
            .starts_with("bump harbor.example.com/flows/etl:2.0.0")
    );
    assert!(file_at_head(&bare, "apps/staging/worker.yaml").contains("prefectTag: \"1.1.0\""));

    // A target path that does not exist is bad input: exit 2, nothing pushed.
    let head = git(&bare, &["rev-parse", "main"]);
    flowship()
        .args([
            "bump",
            "--repo",
            &repo,
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "3.0.0",
        ])
        .args(["--target", "apps/prod/worker.yaml:worker.image.tag"])
        .run()
        .code(2)
        .stderr_has("no scalar value at `worker.image.tag`");
    assert_eq!(git(&bare, &["rev-parse", "main"]), head);
}

#[test]
fn unknown_environment_is_a_usage_error_with_did_you_mean() {
    let f = flowship().in_scratch_dir();
    f.file(
        "flowship.yaml",
        "gitops:\n  environments:\n    production: {}\n",
    );
    f.args([
        "bump",
        "--repo",
        "git://127.0.0.1:9/x.git",
        "--image",
        "h.example.com/a/b",
        "--tag",
        "1",
        "--env",
        "prodution",
    ])
    .run()
    .code(2)
    .stderr_has("did you mean `production`?");
}

#[test]
fn monotonic_refuses_to_move_backwards_with_exit_3() {
    let (name, bare) = seeded(&[("a.yaml", release("etl", "1.10.0"))]);
    let repo = format!("{}/{name}", svc("GIT_DAEMON"));
    let head = git(&bare, &["rev-parse", "main"]);
    let o = flowship()
        .env("FLOWSHIP_MONOTONIC", "semver")
        .args([
            "bump",
            "--repo",
            &repo,
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.9.0",
        ])
        .run();
    o.code(3)
        .stderr_has("newer than 1.9.0")
        .stderr_has("refusing to move it backwards");
    assert_eq!(git(&bare, &["rev-parse", "main"]), head);
    flowship()
        .args([
            "bump",
            "--monotonic",
            "semver",
            "--repo",
            &repo,
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.11.0",
        ])
        .run()
        .success();
    // A new tag outside the order cannot be checked: refused, not let through (issue 8, item 10).
    let head = git(&bare, &["rev-parse", "main"]);
    flowship()
        .env("FLOWSHIP_MONOTONIC", "semver")
        .args([
            "bump",
            "--repo",
            &repo,
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "0a1b2c3d",
        ])
        .run()
        .code(2)
        .stderr_has("the new tag `0a1b2c3d` is not a semver version")
        .stderr_has("drop --monotonic");
    assert_eq!(git(&bare, &["rev-parse", "main"]), head);
}

/// An old value outside the order (`latest`) gives way to the first ordered tag, and the run says so.
#[test]
fn monotonic_replaces_an_unordered_old_tag_and_says_so() {
    let (name, bare) = seeded(&[("a.yaml", release("etl", "latest"))]);
    let repo = format!("{}/{name}", svc("GIT_DAEMON"));
    flowship()
        .args([
            "bump",
            "--monotonic",
            "semver",
            "--repo",
            &repo,
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.0.0",
        ])
        .run()
        .success()
        .stderr_has("`latest` is not a semver version; replacing it with `1.0.0`");
    assert!(file_at_head(&bare, "a.yaml").contains("tag: \"1.0.0\""));
}

#[test]
fn merge_request_through_the_api_is_opened_once_and_reused() {
    let (name, bare) = seeded(&[("a.yaml", release("etl", "1.0.0"))]);
    let repo = format!("{}/{name}", svc("GIT_DAEMON"));
    let main = git(&bare, &["rev-parse", "main"]);
    let run = || {
        flowship()
            .env("FLOWSHIP_GITLAB_URL", svc("GITLAB_API"))
            .env("FLOWSHIP_GITLAB_TOKEN", svc("GITLAB_TOKEN"))
            .env(
                "FLOWSHIP_GITLAB_PROJECT",
                format!("platform/{}", name.trim_end_matches(".git")),
            )
            .args([
                "bump",
                "--merge-request",
                "--repo",
                &repo,
                "--image",
                "harbor.example.com/flows/etl",
                "--tag",
                "1.5.0",
                "--output",
                "json",
            ])
            .run()
    };
    let doc = run().success().json();
    let mr = &doc["gitops"]["merge_request"];
    assert_eq!(mr["created"], true, "{doc}");
    assert_eq!(mr["source_branch"], "flowship/etl-1.5.0");
    assert!(mr["url"].as_str().unwrap().contains("/-/merge_requests/"));
    assert_eq!(
        git(&bare, &["rev-parse", "main"]),
        main,
        "main must not move in merge-request mode"
    );
    assert!(git(&bare, &["show", "flowship/etl-1.5.0:a.yaml"]).contains("tag: \"1.5.0\""));
    // Re-run: the branch already has the change, the open MR is reused, nothing new is pushed.
    let tip = git(&bare, &["rev-parse", "flowship/etl-1.5.0"]);
    let doc = run().success().json();
    assert_eq!(doc["gitops"]["merge_request"]["created"], false, "{doc}");
    assert_eq!(doc["gitops"]["merge_request"]["url"], mr["url"]);
    assert_eq!(git(&bare, &["rev-parse", "flowship/etl-1.5.0"]), tip);
}

/// A GitLab URL that plain HTTP may not reach is refused before the push, not after it.
#[test]
fn merge_request_to_an_unlisted_plain_http_gitlab_is_refused_before_anything_is_pushed() {
    let (name, bare) = seeded(&[("a.yaml", release("etl", "1.0.0"))]);
    let refs = git(&bare, &["for-each-ref"]);
    flowship()
        .env("FLOWSHIP_GITLAB_URL", "http://127.0.0.1:1/api/v4")
        .env("FLOWSHIP_GITLAB_TOKEN", SENTINEL)
        .env("FLOWSHIP_GITLAB_PROJECT", "platform/gitops")
        .args([
            "bump",
            "--merge-request",
            "--repo",
            &format!("{}/{name}", svc("GIT_DAEMON")),
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.5.0",
        ])
        .run()
        .code(2)
        .stderr_has("FLOWSHIP_GITLAB_URL")
        .stderr_has("--plain-http 127.0.0.1:1");
    assert_eq!(git(&bare, &["for-each-ref"]), refs, "nothing pushed");
}

#[test]
fn merge_request_with_a_wrong_api_token_fails_clearly() {
    let (name, _) = seeded(&[("a.yaml", release("etl", "1.0.0"))]);
    flowship()
        .env("FLOWSHIP_GITLAB_URL", svc("GITLAB_API"))
        .env("FLOWSHIP_GITLAB_TOKEN", SENTINEL)
        .args([
            "bump",
            "--merge-request",
            "--repo",
            &format!("{}/{name}", svc("GIT_DAEMON")),
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.5.0",
        ])
        .run()
        .code(1)
        .stderr_has("GitLab API rejected the token")
        .stderr_has("FLOWSHIP_GITLAB_TOKEN");
}

#[test]
fn merge_request_through_push_options_reaches_the_server() {
    let (name, bare) = seeded(&[("a.yaml", release("etl", "1.0.0"))]);
    git(&bare, &["config", "receive.advertisePushOptions", "true"]);
    // A server hook records the push options, as GitLab's would act on them.
    let hook = bare.join("hooks/post-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nenv | grep '^GIT_PUSH_OPTION_' | sort > \"$GIT_DIR/push-options\"\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&hook)
        .status()
        .unwrap();
    flowship()
        .args([
            "bump",
            "--merge-request",
            "--repo",
            &format!("{}/{name}", svc("GIT_DAEMON")),
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.6.0",
        ])
        .args(["--push-option", "ci.skip"])
        .run()
        .success()
        .stderr_has("push options");
    let opts = std::fs::read_to_string(bare.join("push-options")).unwrap();
    assert!(opts.contains("=merge_request.create"), "{opts}");
    assert!(opts.contains("=merge_request.target=main"), "{opts}");
    assert!(opts.contains("=ci.skip"), "{opts}");
}

#[test]
fn commit_message_template_and_local_path_repository() {
    let (_, bare) = seeded(&[("a.yaml", release("etl", "1.0.0"))]);
    // A local path: libgit2 cannot clone those shallow; flowship clones them whole.
    flowship()
        .env("CI_JOB_URL", "https://gitlab.example.com/g/etl/-/jobs/9")
        .args([
            "bump",
            "--repo",
            bare.to_str().unwrap(),
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "1.4.0",
        ])
        .args([
            "--message",
            "release: etl {tag}\n\n{changes}\nby job {job_url}",
        ])
        .run()
        .success();
    let body = git(&bare, &["log", "-1", "--format=%B"]);
    assert!(body.starts_with("release: etl 1.4.0\n\na.yaml: spec.values.image.tag 1.0.0 -> 1.4.0\nby job https://gitlab.example.com/g/etl/-/jobs/9"), "{body}");
    assert!(
        !body.contains("Job: "),
        "the template placed the job link itself: {body}"
    );
}

#[test]
fn ssh_deploy_key_with_known_hosts() {
    let (name, bare) = seeded(&[("a.yaml", release("etl", "1.0.0"))]);
    let repo = format!("{}/{name}", svc("GIT_SSH"));
    let bump = |known_hosts: &str, tag: &str| {
        flowship()
            .env("FLOWSHIP_GIT_SSH_KEY_FILE", svc("SSH_KEY"))
            .env("FLOWSHIP_GIT_SSH_KNOWN_HOSTS", known_hosts)
            .args([
                "bump",
                "--repo",
                &repo,
                "--image",
                "harbor.example.com/flows/etl",
                "--tag",
                tag,
            ])
            .run()
    };
    bump(&svc("SSH_KNOWN_HOSTS"), "1.3.0").success();
    assert!(file_at_head(&bare, "a.yaml").contains("tag: \"1.3.0\""));
    // A server whose key is not the one on file is refused, with the fix.
    let head = git(&bare, &["rev-parse", "main"]);
    bump(&svc("SSH_WRONG_KNOWN_HOSTS"), "1.4.0")
        .code(1)
        .stderr_has("does not match, the known_hosts file")
        .stderr_has("ssh-keyscan");
    assert_eq!(git(&bare, &["rev-parse", "main"]), head);
    // And doctor sees the same.
    flowship()
        .env("FLOWSHIP_GIT_SSH_KEY_FILE", svc("SSH_KEY"))
        .env("FLOWSHIP_GIT_SSH_KNOWN_HOSTS", svc("SSH_KNOWN_HOSTS"))
        .env("FLOWSHIP_GITOPS_REPO", &repo)
        .args(["doctor"])
        .run()
        .success()
        .stdout_has("receive-pack granted");
}

/// `gitops.environments.E.branch` (and `environments.E.gitops.branch`) is the branch a bump to E goes to
/// (issue 8, item 2).
#[test]
fn an_environment_branch_is_where_its_bump_goes() {
    for (i, shape) in ["legacy", "nested"].iter().enumerate() {
        let (name, bare) = seeded(&[("a.yaml", release("etl", "1.0.0"))]);
        git(&bare, &["branch", "prod", "main"]);
        let main = git(&bare, &["rev-parse", "main"]);
        let repo = format!("{}/{name}", svc("GIT_DAEMON"));
        let env = match *shape {
            "legacy" => "gitops:\n  environments:\n    prod:\n      branch: prod\n".to_string(),
            _ => "environments:\n  prod:\n    gitops:\n      branch: prod\n".to_string(),
        };
        let f = flowship().in_scratch_dir();
        f.file(
            "flowship.yaml",
            &format!("image:\n  repository: harbor.example.com/flows/etl\n{env}"),
        );
        let tag = format!("1.{}.0", i + 1);
        f.args(["bump", "--repo", &repo, "--env", "prod", "--tag", &tag])
            .run()
            .success();
        assert_eq!(
            git(&bare, &["rev-parse", "main"]),
            main,
            "{shape}: main must not move"
        );
        assert!(
            git(&bare, &["show", "prod:a.yaml"]).contains(&format!("tag: \"{tag}\"")),
            "{shape}: the bump is not on prod"
        );
    }
}

/// Eight pipelines open the same merge request at once: every one that exits 0 leaves the change on the MR
/// branch (the remote's, never its own unpushed commit), main does not move, one MR is opened (issue 8,
/// item 6).
#[test]
fn concurrent_merge_request_bumps_report_only_what_the_remote_has() {
    let (name, bare) = seeded(&[("a.yaml", release("etl", "1.0.0"))]);
    let main = git(&bare, &["rev-parse", "main"]);
    for (transport, repo) in [
        ("git://", format!("{}/{name}", svc("GIT_DAEMON"))),
        ("local path", bare.display().to_string()),
    ] {
        let tag = if transport == "git://" {
            "1.7.0"
        } else {
            "1.8.0"
        };
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (repo, name, barrier) = (repo.clone(), name.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let f = flowship()
                        .env("FLOWSHIP_GITLAB_URL", svc("GITLAB_API"))
                        .env("FLOWSHIP_GITLAB_TOKEN", svc("GITLAB_TOKEN"))
                        .env(
                            "FLOWSHIP_GITLAB_PROJECT",
                            format!("platform/{}", name.trim_end_matches(".git")),
                        );
                    barrier.wait();
                    f.args([
                        "bump",
                        "--merge-request",
                        "--repo",
                        &repo,
                        "--image",
                        "harbor.example.com/flows/etl",
                        "--tag",
                        tag,
                        "--output",
                        "json",
                    ])
                    .run()
                })
            })
            .collect();
        let mut urls = std::collections::BTreeSet::new();
        for h in handles {
            let o = h.join().unwrap();
            let doc = o.success().json();
            let commit = doc["gitops"]["commit"].as_str().unwrap().to_string();
            let branch = format!("flowship/etl-{tag}");
            let tip = git(&bare, &["rev-parse", &branch]);
            assert_eq!(
                git(&bare, &["merge-base", "--is-ancestor", &commit, &tip]),
                "",
                "{transport}: reported commit {commit} is not on {branch}"
            );
            urls.insert(
                doc["gitops"]["merge_request"]["url"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
            assert!(
                git(&bare, &["show", &format!("{branch}:a.yaml")])
                    .contains(&format!("tag: \"{tag}\""))
            );
        }
        assert_eq!(
            urls.len(),
            1,
            "{transport}: one merge request, reused: {urls:?}"
        );
        assert_eq!(git(&bare, &["rev-parse", "main"]), main);
    }
}

/// A token goes only where it was configured: a `url.*.insteadOf` in the user's git configuration that sends
/// the remote elsewhere (here: a listener that asks for credentials) gets no `Authorization` header.
#[test]
fn the_token_never_follows_an_insteadof_rewrite_to_another_origin() {
    let (port, seen) = http_listener(|_| {
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
    });
    let (name, _) = seeded(&[("a.yaml", release("etl", "1.0.0"))]);
    let real = format!("{}/{name}", svc("GIT_HTTP"));
    let f = flowship();
    let home = f.scratch().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join(".gitconfig"),
        format!("[url \"http://127.0.0.1:{port}/\"]\n\tinsteadOf = {real}\n"),
    )
    .unwrap();
    let o = f
        .env("FLOWSHIP_GIT_TOKEN", SENTINEL)
        .env("FLOWSHIP_PLAIN_HTTP", format!("127.0.0.1:{port}"))
        .args([
            "bump",
            "--repo",
            &real,
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "2.0.0",
        ])
        .run();
    assert_ne!(o.code, 0, "{o}");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains("GET "), "the rewrite was not taken: {o}");
    assert!(
        !seen.to_ascii_lowercase().contains("authorization:"),
        "the token followed the rewrite:\n{seen}"
    );
}

/// A listener that logs what it is sent and answers each connection with `answer(port)`.
fn http_listener(
    answer: impl Fn(u16) -> String + Send + 'static,
) -> (u16, std::sync::Arc<std::sync::Mutex<String>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(6) {
            let Ok(mut s) = stream else { continue };
            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .ok();
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            log.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
            let _ = s.write_all(answer(port).as_bytes());
        }
    });
    (port, seen)
}

/// A redirect from the configured (allowed) remote to another port takes no token with it.
#[test]
fn the_token_never_follows_a_redirect_to_another_origin() {
    let (other, seen) = http_listener(|_| {
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
    });
    let (first, _) = http_listener(move |_| {
        format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{other}/g/gitops.git/info/refs?service=git-upload-pack\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    });
    let o = flowship()
        .env("FLOWSHIP_GIT_TOKEN", SENTINEL)
        .env(
            "FLOWSHIP_PLAIN_HTTP",
            format!("127.0.0.1:{first},127.0.0.1:{other}"),
        )
        .args([
            "bump",
            "--repo",
            &format!("http://127.0.0.1:{first}/g/gitops.git"),
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "2.0.0",
        ])
        .run();
    assert_ne!(o.code, 0, "{o}");
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.to_ascii_lowercase().contains("authorization:"),
        "the token followed the redirect:\n{seen}"
    );
}

/// A blob larger than any manifest (a hostile or accidental 20 MiB file) is never read as one: the bump
/// edits the real manifest and leaves the huge file alone, without inflating it.
#[test]
fn a_huge_blob_is_not_read_as_a_manifest() {
    let mut huge = release("etl", "1.0.0");
    huge.push_str(&format!("# {}\n", "x".repeat(20 << 20)));
    let (name, bare) = seeded(&[("a.yaml", release("etl", "1.0.0")), ("huge.yaml", huge)]);
    flowship()
        .args([
            "bump",
            "--repo",
            &format!("{}/{name}", svc("GIT_DAEMON")),
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "2.0.0",
        ])
        .run()
        .success();
    assert!(file_at_head(&bare, "a.yaml").contains("tag: \"2.0.0\""));
    assert!(file_at_head(&bare, "huge.yaml").contains("tag: \"1.0.0\""));
}

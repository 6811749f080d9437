//! `wif-gateway exchange`, the client for CI jobs and pods: the real binary against the real
//! gateway and test issuer. One-shot to stdout, to a 0600 file, from an environment variable;
//! exit status 1 for a refusal, 2 for local problems, 3 for an unreachable gateway or issuer
//! after bounded retries; `--refresh` rewriting its file, following a rotated caller token,
//! keeping the file on failure and stopping with status 0 on SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use wif_gateway::testkit::decode_payload;

use crate::support::gateway::{AUD, FED, SA, SUBJECT, binding, scenario};
use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_wif-gateway");
/// A second subject bound to [`SA`], to tell which caller token an access token came from.
const SUBJECT2: &str = "project_path:demo/app:ref_type:branch:ref:release";
/// A subject no federated credential binds.
const UNBOUND: &str = "project_path:demo/other:ref_type:branch:ref:main";

struct Setup {
    issuer: TestIssuer,
    key: TestKey,
    gateway: Gateway,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn start(options: Options) -> Setup {
        let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
        let directory = format!("{}{}", scenario(&issuer), binding(FED, SA, SUBJECT2));
        let gateway = Gateway::start_with(&directory, options).await;
        Setup {
            issuer,
            key,
            gateway,
            dir: tempfile::tempdir().expect("dir"),
        }
    }

    fn jwt(&self, subject: &str) -> String {
        self.issuer.token(&self.key, subject, AUD)
    }

    /// A token file holding `jwt` and a trailing newline, as Kubernetes writes it.
    fn token_file(&self, name: &str, jwt: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{jwt}\n")).expect("write token file");
        path
    }
}

/// `wif-gateway exchange` with none of the `WIF_*` variables of the surrounding environment.
fn exchange() -> Command {
    let mut command = Command::new(BIN);
    command.arg("exchange").env("RUST_LOG", "info");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WIF_") {
            command.env_remove(name);
        }
    }
    command
}

async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("run wif-gateway exchange")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Checks an access token minted for [`SA`] from a caller token of `subject`.
fn assert_minted(gateway: &Gateway, access_token: &str, subject: &str) {
    let claims = decode_payload(access_token);
    assert_eq!(claims["iss"], gateway.url.as_str());
    assert_eq!(claims["sub"], SA);
    assert_eq!(claims["act"]["sub"], subject);
}

fn assert_no_secrets(stderr: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !stderr.contains(secret),
            "a token appears on stderr: {stderr}"
        );
        let signature = secret.rsplit('.').next().unwrap_or_default();
        assert!(
            !stderr.contains(signature),
            "a token signature appears on stderr"
        );
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// A loopback URL on which nothing listens.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn one_shot_prints_only_the_access_token_on_stdout() {
    let setup = Setup::start(Options::default()).await;
    let jwt = setup.jwt(SUBJECT);
    let file = setup.token_file("token", &jwt);
    let mut command = exchange();
    command
        .args([
            "--url",
            &setup.gateway.url,
            "--service-account",
            SA,
            "--token-file",
        ])
        .arg(&file);
    let out = output(command).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.ends_with('\n') && stdout.lines().count() == 1,
        "{stdout:?}"
    );
    let access_token = stdout.trim();
    assert_minted(&setup.gateway, access_token, SUBJECT);
    assert_no_secrets(&stderr, &[&jwt, access_token]);
}

#[tokio::test]
async fn one_shot_writes_a_private_file_and_takes_options_from_the_environment() {
    let setup = Setup::start(Options::default()).await;
    let jwt = setup.jwt(SUBJECT2);
    let out_path = setup.dir.path().join("run/secrets/access-token");
    std::fs::create_dir_all(out_path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&out_path, "old").expect("old file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&out_path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    // Everything from the environment, the token in a variable as GitLab `id_tokens` puts it.
    let mut command = exchange();
    command
        .env("WIF_URL", &setup.gateway.url)
        .env("WIF_SERVICE_ACCOUNT", SA)
        .env("WIF_TOKEN_ENV", "GITLAB_WIF_TOKEN")
        .env("GITLAB_WIF_TOKEN", &jwt)
        .env("WIF_OUT", &out_path);
    let out = output(command).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout with --out");
    let written = std::fs::read_to_string(&out_path).expect("out file");
    assert_eq!(written.trim(), written, "the file holds just the token");
    assert_minted(&setup.gateway, &written, SUBJECT2);
    #[cfg(unix)]
    assert_eq!(mode(&out_path), 0o600, "readable by its owner only");
    let leftovers: Vec<_> = std::fs::read_dir(out_path.parent().expect("parent"))
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers, ["access-token"], "no temporary file is left");
    assert_no_secrets(&stderr, &[&jwt, &written]);

    // The same with flags and --token-env.
    let mut command = exchange();
    command
        .args(["--url", &setup.gateway.url, "--service-account", SA])
        .args(["--token-env", "WIF_TOKEN", "--out"])
        .arg(&out_path)
        .env("WIF_TOKEN", format!("  {jwt}\n"));
    let out = output(command).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let again = std::fs::read_to_string(&out_path).expect("out file");
    assert_ne!(again, written, "a new token replaced the file");
    assert_minted(&setup.gateway, &again, SUBJECT2);
}

#[tokio::test]
async fn local_problems_exit_2_without_contacting_the_gateway() {
    let dir = tempfile::tempdir().expect("dir");
    let url = closed_port_url();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").expect("write");
    /// Arguments after the URL and service account, environment, expected text on stderr.
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                "--token-file".into(),
                dir.path().join("missing").display().to_string(),
            ],
            vec![],
            "No such file",
        ),
        (
            vec!["--token-file".into(), empty.display().to_string()],
            vec![],
            "is empty",
        ),
        (
            vec!["--token-env".into(), "WIF_TOKEN".into()],
            vec![],
            "WIF_TOKEN is not set",
        ),
        (
            vec!["--token-env".into(), "WIF_TOKEN".into()],
            vec![("WIF_TOKEN", " ")],
            "is empty",
        ),
        (
            vec!["--token-env".into(), "WIF_TOKEN".into(), "--refresh".into()],
            vec![("WIF_TOKEN", "a.b.c")],
            "--out",
        ),
        (vec![], vec![], "--token-file"),
    ];
    for (args, env, needle) in cases {
        let mut command = exchange();
        command
            .args(["--url", &url, "--service-account", SA])
            .args(&args)
            .envs(env);
        let started = Instant::now();
        let out = output(command).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
        assert!(out.stdout.is_empty());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{args:?}: local errors are not retried"
        );
    }
}

/// Asserts that no 16-character piece of `secret` is in `text`.
fn assert_no_piece(text: &str, secret: &str, context: &str) {
    let bytes = secret.as_bytes();
    for piece in bytes.windows(16) {
        let piece = std::str::from_utf8(piece).expect("ASCII");
        assert!(
            !text.contains(piece),
            "{context}: {piece:?} of the token is shown in: {text}"
        );
    }
}

#[tokio::test]
async fn a_token_given_as_an_argument_is_never_echoed() {
    let setup = Setup::start(Options::default()).await;
    let jwt = setup.jwt(SUBJECT);
    let url = setup.gateway.url.clone();
    let out_path = setup.dir.path().join("access-token");
    let out = out_path.display().to_string();
    // A random base62 secret, e.g. a personal access token.
    let opaque = "glpatX7kQ2mVn9RtB4wZc8LhJ3pYs6DfG1aEu5Ni";
    let s = |v: &str| v.to_owned();
    let common = |rest: &[String]| {
        let mut args = vec![s("--url"), url.clone(), s("--service-account"), s(SA)];
        args.extend_from_slice(rest);
        args
    };
    /// Arguments after `exchange`, environment, the token, expected text on stderr.
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let name = "--token-env (WIF_TOKEN_ENV) takes the NAME of an environment variable";
    let path = "looks like a token, not a path";
    let cases: Vec<Case> = vec![
        (common(&[s("--token-env"), jwt.clone()]), vec![], &jwt, name),
        (common(&[format!("--token-env={jwt}")]), vec![], &jwt, name),
        (common(&[]), vec![("WIF_TOKEN_ENV", &jwt)], &jwt, name),
        (common(&[s("--token-env"), s(opaque)]), vec![], opaque, name),
        (
            common(&[s("--token-file"), jwt.clone()]),
            vec![],
            &jwt,
            path,
        ),
        (
            common(&[
                s("--token-file"),
                jwt.clone(),
                s("--refresh"),
                s("--out"),
                out.clone(),
            ]),
            vec![],
            &jwt,
            path,
        ),
        // Clap's own errors: an extra argument, an invalid number, two sources.
        (
            common(&[s("--token-env"), s("WIF_TOKEN"), jwt.clone()]),
            vec![("WIF_TOKEN", &jwt)],
            &jwt,
            "unexpected argument",
        ),
        (
            common(&[
                s("--token-env"),
                s("WIF_TOKEN"),
                s("--max-attempts"),
                jwt.clone(),
            ]),
            vec![("WIF_TOKEN", &jwt)],
            &jwt,
            "invalid value",
        ),
        (
            common(&[
                s("--token-env"),
                s("WIF_TOKEN"),
                s("--out"),
                out.clone(),
                s("--refresh"),
                s("--refresh-margin"),
                jwt.clone(),
            ]),
            vec![("WIF_TOKEN", &jwt)],
            &jwt,
            "invalid value",
        ),
        (
            common(&[s("--token-env"), jwt.clone(), s("--token-file"), s("token")]),
            vec![],
            &jwt,
            "cannot be used with",
        ),
        // The token in place of another option.
        (
            common(&[s("--token-env"), s("WIF_TOKEN"), s("--out"), jwt.clone()]),
            vec![("WIF_TOKEN", &jwt)],
            &jwt,
            "--out takes",
        ),
        (
            vec![s("--url"), jwt.clone(), s("--service-account"), s(SA)],
            vec![],
            &jwt,
            "--url takes",
        ),
        (
            vec![
                s("--url"),
                format!("https://{jwt}"),
                s("--service-account"),
                s(SA),
            ],
            vec![],
            &jwt,
            "--url takes",
        ),
        (
            vec![
                s("--url"),
                format!("{url}/{jwt}"),
                s("--service-account"),
                s(SA),
            ],
            vec![],
            &jwt,
            "--url takes",
        ),
        (
            vec![s("--url"), url.clone(), s("--service-account"), jwt.clone()],
            vec![],
            &jwt,
            "--service-account takes",
        ),
    ];
    for (args, env, token, needle) in cases {
        let mut command = exchange();
        let token_given = args.iter().any(|a| a.starts_with("--token-"))
            || env.iter().any(|(name, _)| name.starts_with("WIF_TOKEN_"));
        command.args(&args).envs(env);
        if !token_given {
            command
                .args(["--token-env", "WIF_TOKEN"])
                .env("WIF_TOKEN", &jwt);
        }
        let started = Instant::now();
        let output = output(command).await;
        let stderr = text(&output.stderr);
        let context = format!("case with {needle:?}");
        assert_no_piece(&stderr, token, &context);
        assert_no_piece(&text(&output.stdout), token, &context);
        assert_eq!(output.status.code(), Some(2), "{context}: {stderr}");
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
        assert!(started.elapsed() < Duration::from_secs(2), "{context}");
    }
    assert!(!out_path.exists());

    // The token in place of the subcommand.
    let mut command = Command::new(BIN);
    command.arg(&jwt);
    let output = output(command).await;
    let stderr = text(&output.stderr);
    assert_no_piece(&stderr, &jwt, "subcommand");
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unrecognized subcommand"), "{stderr}");
}

#[tokio::test]
async fn a_refused_token_exits_1_with_the_gateway_error_and_no_retry() {
    let setup = Setup::start(Options::default()).await;
    let jwt = setup.jwt(UNBOUND);
    let file = setup.token_file("token", &jwt);
    let mut command = exchange();
    command
        .args([
            "--url",
            &setup.gateway.url,
            "--service-account",
            SA,
            "--token-file",
        ])
        .arg(&file);
    let started = Instant::now();
    let out = output(command).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    for needle in [
        "refused the exchange (not retryable)",
        "status: HTTP 400",
        "error: invalid_grant",
        "error_code: no_federated_credential",
        "error_description: ",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert!(
        !stderr.contains("retrying"),
        "400 is never retried: {stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_no_secrets(&stderr, &[&jwt]);
}

#[tokio::test]
async fn an_unreachable_gateway_exits_3_after_bounded_retries() {
    let dir = tempfile::tempdir().expect("dir");
    let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW5vdC1jaGVja2Vk";
    let mut command = exchange();
    command
        .args(["--url", &closed_port_url(), "--service-account", SA])
        .args(["--token-env", "WIF_TOKEN", "--out"])
        .arg(dir.path().join("token"))
        .env("WIF_TOKEN", jwt);
    let started = Instant::now();
    let out = output(command).await;
    let elapsed = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(elapsed < Duration::from_secs(10), "bounded: {elapsed:?}");
    // Four waits of at least 0.25, 0.5, 1 and 2 s (backoff with equal jitter).
    assert!(
        elapsed >= Duration::from_millis(3700),
        "backed off: {elapsed:?}"
    );
    assert_eq!(stderr.matches("retrying").count(), 4, "{stderr}");
    for needle in ["after 5 attempts", "retryable", "cause: "] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert!(!dir.path().join("token").exists(), "no file on failure");
    assert_no_secrets(&stderr, &[jwt]);
}

#[tokio::test]
async fn a_url_scheme_that_does_not_match_the_server_exits_2_at_once() {
    let setup = Setup::start(Options::default()).await;
    let jwt = setup.jwt(SUBJECT);
    let file = setup.token_file("token", &jwt);
    let plain = setup.gateway.url.replacen("http://", "https://", 1);
    // A TLS server: the HTTPS front of the test issuer.
    let front = tls::TlsFront::start(&setup.issuer).await;
    let tls = format!("http://127.0.0.1:{}", front.addr().port());
    for (url, needle) in [
        (
            &plain,
            "the --url scheme https:// does not match the server: 127.0.0.1:",
        ),
        (
            &tls,
            "the --url scheme http:// does not match the server: 127.0.0.1:",
        ),
    ] {
        let mut command = exchange();
        command
            .args(["--url", url, "--service-account", SA, "--token-file"])
            .arg(&file);
        let started = Instant::now();
        let out = output(command).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
        assert!(!stderr.contains("retrying"), "not retried: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(5), "{url}: at once");
        assert!(out.stdout.is_empty());
        assert_no_secrets(&stderr, &[&jwt]);
    }
}

#[tokio::test]
async fn an_unreachable_issuer_exits_3_and_honours_retry_after() {
    let setup = Setup::start(Options::default()).await;
    let jwt = setup.jwt(SUBJECT);
    setup.issuer.stop().await;
    let file = setup.token_file("token", &jwt);
    let mut command = exchange();
    command
        .args(["--url", &setup.gateway.url, "--service-account", SA])
        .args(["--max-attempts", "2", "--token-file"])
        .arg(&file);
    let started = Instant::now();
    let out = output(command).await;
    let elapsed = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    for needle in [
        "after 2 attempts (retryable",
        "status: HTTP 503",
        "error: temporarily_unavailable",
        "error_code: issuer_unavailable",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert_eq!(stderr.matches("retrying").count(), 1, "{stderr}");
    assert!(
        elapsed >= Duration::from_millis(4900),
        "waited Retry-After: 5 ({elapsed:?})"
    );
    assert!(out.stdout.is_empty());
    assert_no_secrets(&stderr, &[&jwt]);
}

/// Kills the child on drop (a failed assertion must not leave it running).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits up to `limit` for `check` to return `Some`.
async fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Replaces a file by rename, as the kubelet rotates projected tokens.
fn rotate(path: &Path, contents: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[tokio::test]
async fn refresh_rewrites_the_file_follows_the_token_file_and_stops_on_sigterm() {
    let setup = Setup::start(Options {
        tokens: "lifetime_seconds = 60".into(),
        ..Options::default()
    })
    .await;
    let first_jwt = setup.jwt(SUBJECT);
    let file = setup.token_file("token", &first_jwt);
    let out_path = setup.dir.path().join("access-token");
    let log_path = setup.dir.path().join("stderr.log");
    let mut command = exchange();
    command
        .args(["--url", &setup.gateway.url, "--service-account", SA])
        .args(["--refresh", "--refresh-margin", "58", "--token-file"])
        .arg(&file)
        .arg("--out")
        .arg(&out_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).expect("log file"));
    let mut child = Running(command.spawn().expect("spawn"));
    let logs = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let current = || std::fs::read_to_string(&out_path).ok();

    // 1. Written, then rewritten with a new token every ~2 s.
    let mut seen: Vec<String> = Vec::new();
    let started = Instant::now();
    wait_for(Duration::from_secs(8), "two rewrites", || {
        if let Some(token) = current()
            && seen.last() != Some(&token)
        {
            seen.push(token);
        }
        (seen.len() >= 3).then_some(())
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "not faster than the schedule"
    );
    for token in &seen {
        assert_minted(&setup.gateway, token, SUBJECT);
    }
    #[cfg(unix)]
    assert_eq!(mode(&out_path), 0o600);

    // 2. The kubelet rotates the caller token: the next refresh uses the new one.
    let second_jwt = setup.jwt(SUBJECT2);
    rotate(&file, &format!("{second_jwt}\n"));
    let rotated = wait_for(
        Duration::from_secs(6),
        "a token from the rotated file",
        || current().filter(|t| decode_payload(t)["act"]["sub"] == SUBJECT2),
    )
    .await;
    seen.push(rotated.clone());

    // 3. A refused caller token: logged, retried, and the last good token file stays.
    let refused_jwt = setup.jwt(UNBOUND);
    rotate(&file, &refused_jwt);
    wait_for(
        Duration::from_secs(6),
        "a failed refresh in the log",
        || logs().contains("no_federated_credential").then_some(()),
    )
    .await;
    let kept = current().expect("the token file is kept");
    assert_minted(&setup.gateway, &kept, SUBJECT2);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        current().as_deref(),
        Some(kept.as_str()),
        "not replaced on failure"
    );
    assert!(
        logs().contains("the previous token file is kept"),
        "{}",
        logs()
    );

    // 4. SIGTERM: exit status 0.
    let pid = child.0.id().to_string();
    let killed =
        tokio::task::spawn_blocking(move || Command::new("kill").args(["-TERM", &pid]).status())
            .await
            .expect("join")
            .expect("kill");
    assert!(killed.success());
    let status = wait_for(Duration::from_secs(5), "exit after SIGTERM", || {
        child.0.try_wait().expect("wait")
    })
    .await;
    assert_eq!(status.code(), Some(0), "{}", logs());

    let mut stdout = String::new();
    if let Some(mut pipe) = child.0.stdout.take() {
        use std::io::Read as _;
        pipe.read_to_string(&mut stdout).expect("stdout");
    }
    assert!(stdout.is_empty(), "nothing on stdout: {stdout:?}");
    let stderr = logs();
    assert!(stderr.contains("access token refreshed"), "{stderr}");
    let mut secrets: Vec<&str> = seen.iter().map(String::as_str).collect();
    secrets.extend([
        first_jwt.as_str(),
        second_jwt.as_str(),
        refused_jwt.as_str(),
    ]);
    assert_no_secrets(&stderr, &secrets);
}

/// Runs `command` (stdin and stdout closed) and waits up to `limit` for it to exit; the exit
/// status and stderr. A process still running at the deadline is killed and fails the test.
async fn exit_within(mut command: Command, limit: Duration) -> (std::process::ExitStatus, String) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = Running(command.spawn().expect("spawn"));
    let status = wait_for(limit, "wif-gateway exchange to exit", || {
        child.0.try_wait().expect("wait")
    })
    .await;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.0.stderr.take() {
        use std::io::Read as _;
        pipe.read_to_string(&mut stderr).expect("stderr");
    }
    (status, stderr)
}

#[tokio::test]
async fn a_refresh_margin_not_below_the_lifetime_is_a_configuration_error() {
    let setup = Setup::start(Options {
        tokens: "lifetime_seconds = 60".into(),
        ..Options::default()
    })
    .await;
    let jwt = setup.jwt(SUBJECT);
    let file = setup.token_file("token", &jwt);
    let out_path = setup.dir.path().join("access-token");
    let refresh = |margin: &str| {
        let mut command = exchange();
        command
            .args(["--url", &setup.gateway.url, "--service-account", SA])
            .args(["--refresh", "--refresh-margin", margin, "--token-file"])
            .arg(&file)
            .arg("--out")
            .arg(&out_path);
        command
    };

    // Known once the first answer gives the lifetime: exit 2 at once, nothing written.
    for margin in ["60", "3600"] {
        let (status, stderr) = exit_within(refresh(margin), Duration::from_secs(10)).await;
        assert_eq!(status.code(), Some(2), "{stderr}");
        let needle =
            format!("--refresh-margin {margin} is not below the access token's lifetime (60 s)");
        assert!(stderr.contains(&needle), "{needle:?} not in {stderr}");
        assert!(!out_path.exists(), "no token file is written");
        assert_no_secrets(&stderr, &[&jwt]);
    }

    // No token lives 12 h or more: refused when parsed, before any exchange.
    let started = Instant::now();
    let (status, stderr) = exit_within(refresh("43200"), Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value '43200' for '--refresh-margin"),
        "{stderr}"
    );
    assert!(stderr.contains("12 h"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!out_path.exists(), "no token file is written");
}

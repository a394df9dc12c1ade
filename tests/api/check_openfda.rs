//! `regassist check openfda`: one real call to the configured base URL.
#![allow(clippy::unwrap_used)]

use crate::common::fake_openfda::FakeOpenFda;

fn check_openfda(base: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_regassist"))
        .args(["check", "openfda"])
        .env_clear()
        .env("OPENFDA_BASE_URL", base)
        .env("RUST_LOG", "off")
        .env("REGASSIST_OPENFDA_BACKOFF_MS", "5")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_openfda_calls_the_configured_base_url() {
    let fake = FakeOpenFda::start().await;
    let base = fake.base.clone();
    let out = tokio::task::spawn_blocking(move || check_openfda(&base))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok: openFDA at"), "{stdout}");
    assert!(stdout.contains("data last updated 2026-01-12"), "{stdout}");
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_openfda_fails_with_one_line_when_offline() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let out = tokio::task::spawn_blocking(|| check_openfda("http://127.0.0.1:9"))
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("regassist: openFDA check failed at http://127.0.0.1:9"),
        "{stderr}"
    );
}

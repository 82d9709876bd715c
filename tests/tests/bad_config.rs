//! Bad configuration is refused at startup: the process exits non-zero at once with a message
//! naming the setting at fault, instead of starting half-configured.

use std::process::Output;
use std::time::Duration;

use tessera_tests::binaries::tessera_bin;
use tessera_tests::process::run_to_completion;

/// Runs `tessera args`, which must exit non-zero within a few seconds naming `setting` on
/// stderr.
async fn assert_refused(args: &[&str], setting: &str) {
    let output: Output = run_to_completion(&tessera_bin(), args, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e} (bad configuration must make it exit at once)"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "`tessera {}` exited successfully; stderr:\n{stderr}",
        args.join(" ")
    );
    assert!(
        stderr.contains(setting),
        "the error of `tessera {}` should name `{setting}`; stderr:\n{stderr}",
        args.join(" ")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_router_with_a_malformed_listen_address_exits_naming_listen() {
    assert_refused(
        &["router", "--listen", "nonsense", "--catalog", "127.0.0.1:1"],
        "listen",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_with_zero_replicas_exits_naming_replicas() {
    let dir = tempfile::tempdir().expect("cannot create a temp dir");
    let data_dir = dir.path().join("catalog");
    let data_dir = data_dir.to_str().expect("a UTF-8 temp path");
    assert_refused(
        &[
            "catalog",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir,
            "--replicas",
            "0",
        ],
        "replicas",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_without_a_catalog_exits_naming_catalog() {
    let dir = tempfile::tempdir().expect("cannot create a temp dir");
    let data_dir = dir.path().join("node");
    let data_dir = data_dir.to_str().expect("a UTF-8 temp path");
    assert_refused(&["node", "--listen", "127.0.0.1:0", "--data-dir", data_dir], "catalog").await;
}

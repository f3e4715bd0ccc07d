//! `phoebe inject` on real programs: one fault means what the grammar says.

use predicates::prelude::*;

use crate::common::*;

#[test]
fn exit_side_injection_lets_the_write_happen() {
    if !ptrace_works() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.txt");
    phoebe()
        .args(["inject", "-q", "--fault", "write:EIO:nth=1:when=exit", "--"])
        .arg(testapp("write-once"))
        .arg(&file)
        .arg("hello")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "write-once: write failed: Input/output error",
        ));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "hello",
        "when=exit: the call ran"
    );
    phoebe()
        .args(["inject", "-q", "--fault", "write:EIO:nth=1:when=entry", "--"])
        .arg(testapp("write-once"))
        .arg(&file)
        .arg("hello")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "write-once: write failed: Input/output error",
        ));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "",
        "when=entry: the call never ran"
    );
}

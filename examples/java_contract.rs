//! Writes `dev/proxyso/NativeContract.java` from `src/jni/contract.rs`: the Java side of the
//! JNI contract, generated so that it cannot disagree with the Rust side.
//!
//! `cargo run --example java_contract -- OUTPUT_DIR` (the Gradle build runs it before compiling
//! Java) writes `OUTPUT_DIR/dev/proxyso/NativeContract.java`, and only when it changed.

#[path = "../src/jni/contract.rs"]
mod contract;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: java_contract OUTPUT_DIR");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir).join("dev/proxyso");
    let file = dir.join("NativeContract.java");
    let source = contract::java_source();
    if std::fs::read_to_string(&file).is_ok_and(|old| old == source) {
        return ExitCode::SUCCESS;
    }
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, source)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("java_contract: cannot write {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}

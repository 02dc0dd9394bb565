//! The Rust mirror of the ABI (`proxyso-abi`) matches `include/proxyso.h`, field for field, as
//! the C compiler lays it out.

use std::mem::{align_of, offset_of, size_of};
use std::path::Path;
use std::process::Command;

use proxyso_abi as abi;

const PROBE: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include "proxyso.h"
#define S(t) printf(#t " size %zu align %zu\n", sizeof(t), _Alignof(t))
#define F(t, f) printf(#t "." #f " %zu\n", offsetof(t, f))
int main(void) {
    S(proxyso_output); F(proxyso_output, data); F(proxyso_output, len);
    F(proxyso_output, capacity); F(proxyso_output, reserve); F(proxyso_output, host_data);
    S(proxyso_error); F(proxyso_error, set); F(proxyso_error, host_data);
    S(proxyso_host); F(proxyso_host, abi_version); F(proxyso_host, reserved);
    F(proxyso_host, log); F(proxyso_host, host_data);
    S(proxyso_method); F(proxyso_method, name); F(proxyso_method, call);
    S(proxyso_descriptor); F(proxyso_descriptor, abi_version); F(proxyso_descriptor, flags);
    F(proxyso_descriptor, name); F(proxyso_descriptor, version);
    F(proxyso_descriptor, init); F(proxyso_descriptor, destroy);
    F(proxyso_descriptor, method_count); F(proxyso_descriptor, methods);
    printf("PROXYSO_ABI_VERSION %u\n", PROXYSO_ABI_VERSION);
    printf("PROXYSO_OK %d\nPROXYSO_ERROR %d\nPROXYSO_PANIC %d\n", PROXYSO_OK, PROXYSO_ERROR, PROXYSO_PANIC);
    printf("PROXYSO_FLAG_SERIALIZE %u\n", PROXYSO_FLAG_SERIALIZE);
    printf("PROXYSO_FLAG_KEEP_MAPPED %u\n", PROXYSO_FLAG_KEEP_MAPPED);
    printf("PROXYSO_FLAG_LONG_CALLS %u\n", PROXYSO_FLAG_LONG_CALLS);
    printf("PROXYSO_DESCRIPTOR_SYMBOL %s\n", PROXYSO_DESCRIPTOR_SYMBOL);
    return 0;
}
"#;

fn c_layout() -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("abi-layout");
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("probe.c");
    let binary = dir.join("probe");
    std::fs::write(&source, PROBE).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c11", "-Wall", "-Werror", "-o"])
        .arg(&binary)
        .arg(&source)
        .arg("-I")
        .arg(include)
        .status()
        .unwrap();
    assert!(status.success(), "the header does not compile as C11");
    let out = Command::new(&binary).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn rust_types_match_the_c_header() {
    let mut rust = String::new();
    macro_rules! s {
        ($c:literal, $t:ty) => {
            rust += &format!(
                "{} size {} align {}\n",
                $c,
                size_of::<$t>(),
                align_of::<$t>()
            );
        };
    }
    macro_rules! f {
        ($c:literal, $t:ty, $($f:ident),+) => {
            $(rust += &format!("{}.{} {}\n", $c, stringify!($f), offset_of!($t, $f));)+
        };
    }
    s!("proxyso_output", abi::Output);
    f!(
        "proxyso_output",
        abi::Output,
        data,
        len,
        capacity,
        reserve,
        host_data
    );
    s!("proxyso_error", abi::Error);
    f!("proxyso_error", abi::Error, set, host_data);
    s!("proxyso_host", abi::Host);
    f!(
        "proxyso_host",
        abi::Host,
        abi_version,
        reserved,
        log,
        host_data
    );
    s!("proxyso_method", abi::Method);
    f!("proxyso_method", abi::Method, name, call);
    s!("proxyso_descriptor", abi::Descriptor);
    f!(
        "proxyso_descriptor",
        abi::Descriptor,
        abi_version,
        flags,
        name,
        version,
        init,
        destroy
    );
    f!("proxyso_descriptor", abi::Descriptor, method_count, methods);
    rust += &format!("PROXYSO_ABI_VERSION {}\n", abi::ABI_VERSION);
    rust += &format!("PROXYSO_OK {}\nPROXYSO_ERROR {}\n", abi::OK, abi::ERROR);
    rust += &format!("PROXYSO_PANIC {}\n", abi::PANIC);
    rust += &format!("PROXYSO_FLAG_SERIALIZE {}\n", abi::FLAG_SERIALIZE);
    rust += &format!("PROXYSO_FLAG_KEEP_MAPPED {}\n", abi::FLAG_KEEP_MAPPED);
    rust += &format!("PROXYSO_FLAG_LONG_CALLS {}\n", abi::FLAG_LONG_CALLS);
    let symbol = std::str::from_utf8(abi::DESCRIPTOR_SYMBOL)
        .unwrap()
        .trim_end_matches('\0');
    rust += &format!("PROXYSO_DESCRIPTOR_SYMBOL {symbol}\n");
    assert_eq!(c_layout(), rust);
}

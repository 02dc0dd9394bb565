//! Compiles the landing pad (`native/landing.cpp`): the C++ frame every call into plugin code
//! goes through, since Rust cannot catch a C++ exception that a plugin lets escape.

fn main() {
    println!("cargo:rerun-if-changed=native/landing.cpp");
    println!("cargo:rerun-if-changed=../include/proxyso.h");
    // `cpp(true)` also links the C++ runtime (libstdc++ on Linux), which the catch handlers need.
    cc::Build::new()
        .cpp(true)
        .file("native/landing.cpp")
        .include("../include")
        .flag("-std=c++17")
        .flag("-fvisibility=hidden")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("proxyso_landing");
}

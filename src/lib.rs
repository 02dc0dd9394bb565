//! proxyso's JNI layer, built as `libproxy.so`: the one library the JVM loads.
//!
//! Every `Java_dev_proxyso_NativeBridge_*` export is a thin shim that reads its arguments, calls
//! the core (`proxyso-core`, which knows nothing of JNI) and turns its errors into the matching
//! Java exceptions. See `jni` for the entry points and `proxyso_core` for everything else; `ffm`
//! holds the plain C entry points that JDK 22 and later reach through FFM downcalls instead.
#![deny(missing_docs)]

mod ffm;
mod jni;

//! wharf: a container host for OCI images that hold either a Linux root filesystem or
//! WebAssembly (WASI) code.
//!
//! The library is everything but argument parsing: the image store and its import/export
//! formats, layer unpacking, wasm packaging, and the dispatch that decides how an image runs.
//! The `wharf` binary (`src/main.rs`, `src/cli/`) is a thin layer over it.

pub mod backend;
pub mod bundle;
pub mod compose;
pub mod container;
pub mod dispatch;
pub mod id;
pub mod image;
pub mod lifecycle;
pub mod network;
pub mod paths;
#[deny(missing_docs)]
pub mod plugin;
pub mod run;
#[cfg(target_os = "linux")]
pub mod runtime;
pub mod sys;
pub mod volume;

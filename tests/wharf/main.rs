//! wharf's integration tests: one binary driving the built `wharf` (or the one named by
//! `WHARF_BIN`, e.g. `wharf.exe` under wine) against real tools: skopeo, umoci, containerd (and
//! `containerd-shim-wharf-v1`, built beside it).

#[cfg(target_os = "linux")]
mod build;
mod common;
#[cfg(target_os = "linux")]
mod compose;
#[cfg(target_os = "linux")]
mod escape;
#[cfg(target_os = "linux")]
mod hostile;
mod images;
mod layers;
#[cfg(target_os = "linux")]
mod lifecycle;
#[cfg(target_os = "linux")]
mod native;
#[cfg(target_os = "linux")]
mod network;
#[cfg(target_os = "linux")]
mod operate;
mod operate_guests;
mod package;
#[cfg(target_os = "linux")]
mod parity;
mod plugin;
mod portable;
mod registry;
#[cfg(target_os = "linux")]
mod runtime;
#[cfg(target_os = "linux")]
mod shim;
mod store;
#[cfg(target_os = "linux")]
mod trust;
mod wasm;
#[cfg(target_os = "linux")]
mod workloads;

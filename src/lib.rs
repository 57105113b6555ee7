//! wharf: a container host for OCI images that hold either a Linux root filesystem or
//! WebAssembly (WASI) code.
//!
//! The library is everything but argument parsing: the image store and its formats, layer
//! unpacking, wasm packaging, the dispatch that decides how an image runs, both backends,
//! and the container lifecycle. Its doors are thin: the `wharf` CLI (`src/main.rs`,
//! `src/cli/`), `wharf-runtime` (runc's contract) and the containerd shim (`shims/`) parse,
//! call the library, and print.
//!
//! # Layers
//!
//! Imports point down only: a module may use the modules of its own layer and of the
//! layers below, never one above (a test, `layers::imports_point_down`, reads this table
//! and every `crate::` path in `src/`). From the top:
//!
//! ```text
//! compose build host                  a project's plan and its convergence · images from Dockerfiles · what the host offers
//! lifecycle                           create / start / supervise / stop / remove / connect, the monitor
//! container runtime plugin            records and names · runc's verbs · the embedding API
//! backend                             native (namespaces, cgroups, seccomp) · wasm (wasmtime)
//! run bundle dispatch network volume  preparing a run: its bundle, the decision, networks, volumes
//! image trust                         the store, its formats, registries, layer unpacking · which images may come in
//! paths events                        where state lives · the event log
//! sys id status run::options          OS seams · ids · the status machine · the vocabulary of a run
//! ```
//!
//! A store (images, volumes, networks, containers) never asks a higher layer: a volume or
//! network store is told who uses what by its caller, and container records are given the
//! backends' clean-up by the lifecycle ([`lifecycle::containers`]).

pub mod backend;
pub mod build;
pub mod bundle;
pub mod compose;
pub mod container;
pub mod dispatch;
pub mod events;
pub mod host;
pub mod id;
pub mod image;
#[cfg(test)]
mod layers;
pub mod lifecycle;
pub mod network;
pub mod paths;
#[deny(missing_docs)]
pub mod plugin;
pub mod run;
#[cfg(target_os = "linux")]
pub mod runtime;
pub mod status;
pub mod sys;
pub mod trust;
pub mod volume;

//! Running an image: options, and preparing what a backend needs (the runtime spec, the
//! image's files, the wasm module) with the dispatch decision that picks the backend.

pub mod options;
mod prepare;

pub use prepare::{Prepared, RunError, WasmModule, prepare};

//! Running an image: options, and preparing what a backend needs (the runtime spec, the
//! image's files, the wasm module) with the dispatch decision that picks the backend.

mod module;
pub mod options;
mod prepare;

pub use module::{ModuleError, Opened, WasmModule};
pub use prepare::{DEFAULT_PATH, Prepared, RunError, names_a_file, prepare};

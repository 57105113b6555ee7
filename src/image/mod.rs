//! Images: references, the content-addressed store, import/export formats, layer unpacking and
//! wasm packaging.

pub mod archive;
pub mod blob;
pub mod content;
pub mod credentials;
pub mod import;
pub mod layout;
pub mod media;
pub mod package;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod resolved;
pub mod store;
pub mod unpack;

pub use content::{Manifest, read_config, read_manifest};
pub use reference::Reference;
pub use store::{ImageRecord, Store, StoreError};

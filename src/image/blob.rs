//! Content-addressed blobs: digest validation, hashing while streaming, and the writer that
//! only ever exposes a blob at its final path once its digest and size are verified.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Digest, DigestAlgorithm};
use sha2::{Digest as _, Sha256};

/// What can go wrong with a blob.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("unsupported digest {0}: wharf stores sha256 blobs only")]
    UnsupportedDigest(String),
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest { digest: String, reason: String },
    #[error("blob digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("blob {digest} size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("blob exceeds its declared size of {expected} bytes")]
    TooLarge { expected: u64 },
    #[error("blob {0} is not in the store")]
    Missing(String),
    #[error("writing blob under {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Parse a digest string and insist on sha256 (the only algorithm the store keeps).
pub fn parse_sha256(s: &str) -> Result<Digest, BlobError> {
    let d: Digest = s
        .parse()
        .map_err(|e: oci_spec::OciSpecError| BlobError::InvalidDigest {
            digest: s.to_string(),
            reason: e.to_string(),
        })?;
    sha256_hex(&d)?;
    Ok(d)
}

/// The hex part of a sha256 digest, validated (64 lowercase hex digits) so it is safe to use
/// as a file name.
pub fn sha256_hex(d: &Digest) -> Result<&str, BlobError> {
    if *d.algorithm() != DigestAlgorithm::Sha256 {
        return Err(BlobError::UnsupportedDigest(d.to_string()));
    }
    let hex = d.digest();
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(BlobError::InvalidDigest {
            digest: d.to_string(),
            reason: "not 64 lowercase hex digits".into(),
        });
    }
    Ok(hex)
}

/// The sha256 digest of `bytes`.
pub fn digest_of(bytes: &[u8]) -> Digest {
    digest_from_hasher(Sha256::new_with_prefix(bytes))
}

pub(crate) fn digest_from_hasher(h: Sha256) -> Digest {
    format!("sha256:{}", hex::encode(h.finalize()))
        .parse()
        .expect("a sha256 hex digest is a valid digest")
}

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Read the rest of the stream (hashing it) and return the digest and total size.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((digest_from_hasher(self.hasher), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Writes one blob to a temporary file beside the store and moves it into place only when
/// its digest (and size, when known) match. Dropping it without `commit` removes the temp file.
pub struct BlobWriter {
    tmp: tempfile::NamedTempFile,
    hasher: Sha256,
    size: u64,
    expected: Option<(Digest, u64)>,
}

impl BlobWriter {
    pub(crate) fn new(tmp_dir: &Path, expected: Option<(Digest, u64)>) -> Result<Self, BlobError> {
        if let Some((d, _)) = &expected {
            sha256_hex(d)?;
        }
        let tmp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(tmp_dir)
            .map_err(|source| BlobError::Io {
                path: tmp_dir.to_path_buf(),
                source,
            })?;
        Ok(BlobWriter {
            tmp,
            hasher: Sha256::new(),
            size: 0,
            expected,
        })
    }

    /// Copy all of `r` in, stopping early if it runs past the declared size.
    pub fn copy_from(&mut self, r: &mut impl Read) -> Result<u64, BlobError> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0;
        loop {
            let n = r.read(&mut buf).map_err(|source| self.io_err(source))?;
            if n == 0 {
                return Ok(total);
            }
            self.write_chunk(&buf[..n])?;
            total += n as u64;
        }
    }

    /// Append bytes.
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        let new_size = self.size + chunk.len() as u64;
        if let Some((_, expected)) = &self.expected
            && new_size > *expected
        {
            return Err(BlobError::TooLarge {
                expected: *expected,
            });
        }
        self.tmp
            .as_file_mut()
            .write_all(chunk)
            .map_err(|source| self.io_err(source))?;
        self.hasher.update(chunk);
        self.size = new_size;
        Ok(())
    }

    fn io_err(&self, source: io::Error) -> BlobError {
        BlobError::Io {
            path: self.tmp.path().to_path_buf(),
            source,
        }
    }

    /// Verify and move the blob to `blobs_dir/<hex>`. Returns its digest and size.
    pub fn commit(self, blobs_dir: &Path) -> Result<(Digest, u64), BlobError> {
        let digest = digest_from_hasher(self.hasher);
        if let Some((expected, expected_size)) = &self.expected {
            if *expected != digest {
                return Err(BlobError::DigestMismatch {
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
            if *expected_size != self.size {
                return Err(BlobError::SizeMismatch {
                    digest: digest.to_string(),
                    expected: *expected_size,
                    actual: self.size,
                });
            }
        }
        let final_path = blobs_dir.join(sha256_hex(&digest)?);
        if final_path.exists() {
            // Same digest, same bytes: keep the one already there (others may be reading it).
            return Ok((digest, self.size));
        }
        self.tmp.persist(&final_path).map_err(|e| BlobError::Io {
            path: final_path.clone(),
            source: e.error,
        })?;
        Ok((digest, self.size))
    }
}

/// Hash a file on disk.
pub fn hash_file(path: &Path) -> io::Result<(Digest, u64)> {
    HashingReader::new(fs::File::open(path)?).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unsafe_digests() {
        for bad in [
            "sha256:../x",
            "sha256:ABCDEF",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:",
            "nocolon",
        ] {
            assert!(parse_sha256(bad).is_err(), "{bad} accepted");
        }
        assert!(parse_sha256(&format!("sha256:{}", "0".repeat(64))).is_ok());
    }

    #[test]
    fn writer_verifies_digest_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let good = digest_of(b"hello");
        let mut w = BlobWriter::new(dir.path(), Some((good.clone(), 5))).unwrap();
        w.write_chunk(b"hello").unwrap();
        w.commit(dir.path()).unwrap();
        assert!(dir.path().join(sha256_hex(&good).unwrap()).exists());

        {
            let mut w = BlobWriter::new(dir.path(), Some((good.clone(), 5))).unwrap();
            assert!(matches!(
                w.write_chunk(b"hello!"),
                Err(BlobError::TooLarge { .. })
            ));
        }

        let other = dir.path().join("other");
        fs::create_dir(&other).unwrap();
        let mut w = BlobWriter::new(dir.path(), Some((good, 5))).unwrap();
        w.write_chunk(b"HELLO").unwrap();
        assert!(matches!(
            w.commit(&other),
            Err(BlobError::DigestMismatch { .. })
        ));
        // Nothing partial is left: not at the final path, and the temp file is gone.
        assert_eq!(fs::read_dir(&other).unwrap().count(), 0);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("blob-"))
            .collect();
        assert!(leftovers.is_empty());
    }
}

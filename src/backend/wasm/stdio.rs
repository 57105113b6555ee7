//! Guest output to a terminal: escape sequences a guest writes could drive the user's
//! terminal, so unless the user asked for a terminal (`-t`), control characters are made
//! visible when stdout or stderr is a TTY: C0 controls as `^[`, C1 controls (U+0080-U+009F,
//! which UTF-8 terminals obey, and the raw 8-bit bytes 0x80-0x9F, which others do) as
//! `M-^[`, as `cat -v` shows them. Piped output passes through untouched.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Which host stream.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Stdout,
    Stderr,
}

/// A guest output stream that sanitises control characters.
pub struct Sanitized(pub Target);

impl IsTerminal for Sanitized {
    fn is_terminal(&self) -> bool {
        true
    }
}

impl StdoutStream for Sanitized {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(Writer {
            target: self.0,
            pending: Vec::new(),
        })
    }
}

struct Writer {
    target: Target,
    /// The start of a UTF-8 sequence split across two writes.
    pending: Vec<u8>,
}

impl AsyncWrite for Writer {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut clean = Vec::with_capacity(buf.len());
        let this = self.get_mut();
        sanitize_into(&mut this.pending, buf, &mut clean);
        let r = match this.target {
            Target::Stdout => std::io::stdout()
                .lock()
                .write_all(&clean)
                .and_then(|_| std::io::stdout().flush()),
            Target::Stderr => std::io::stderr().lock().write_all(&clean),
        };
        Poll::Ready(r.map(|_| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Control characters other than newline, tab, carriage return and backspace become
/// caret notation (`ESC` → `^[`, CSI U+009B → `M-^[`), as `cat -v` shows them.
#[cfg(test)]
pub fn sanitize(buf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len());
    let mut pending = Vec::new();
    sanitize_into(&mut pending, buf, &mut out);
    // A sequence cut short at the end is shown byte by byte.
    for &b in &pending {
        push_byte(b, &mut out);
    }
    out
}

/// Sanitise `buf` (after the `pending` bytes of an earlier call) into `out`; an incomplete
/// UTF-8 sequence at the end is kept in `pending` for the next call.
pub fn sanitize_into(pending: &mut Vec<u8>, buf: &[u8], out: &mut Vec<u8>) {
    let joined;
    let mut rest: &[u8] = if pending.is_empty() {
        buf
    } else {
        pending.extend_from_slice(buf);
        joined = std::mem::take(pending);
        &joined
    };
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                push_str(s, out);
                return;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                push_str(std::str::from_utf8(valid).unwrap_or_default(), out);
                match e.error_len() {
                    None => {
                        pending.extend_from_slice(after);
                        return;
                    }
                    Some(n) => {
                        for &b in &after[..n] {
                            push_byte(b, out);
                        }
                        rest = &after[n..];
                    }
                }
            }
        }
    }
}

fn push_str(s: &str, out: &mut Vec<u8>) {
    for c in s.chars() {
        match c {
            '\n' | '\t' | '\r' | '\u{8}' => out.push(c as u8),
            '\u{0}'..='\u{1f}' | '\u{7f}' => {
                out.push(b'^');
                out.push(c as u8 ^ 0x40);
            }
            '\u{80}'..='\u{9f}' => {
                out.extend_from_slice(b"M-^");
                out.push((c as u8 - 0x80) ^ 0x40);
            }
            _ => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// A byte that is not part of valid UTF-8: an 8-bit terminal would take 0x80-0x9F as C1.
fn push_byte(b: u8, out: &mut Vec<u8>) {
    match b {
        0x00..=0x7f => push_str(&(b as char).to_string(), out),
        0x80..=0x9f => {
            out.extend_from_slice(b"M-^");
            out.push((b - 0x80) ^ 0x40);
        }
        _ => {
            out.extend_from_slice(b"M-");
            push_byte(b - 0x80, out);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_become_visible() {
        assert_eq!(super::sanitize(b"\x1b[2Jhi\n\x07"), b"^[[2Jhi\n^G");
    }

    #[test]
    fn c1_controls_become_visible_in_both_encodings() {
        // 8-bit CSI (a raw 0x9B byte) and UTF-8 CSI (U+009B) both drive terminals.
        assert_eq!(super::sanitize(b"\x9b2J"), b"M-^[2J");
        assert_eq!(super::sanitize("\u{9b}2J\u{85}".as_bytes()), b"M-^[2JM-^E");
        // Ordinary non-ASCII text passes, even with continuation bytes in 0x80-0x9F.
        assert_eq!(
            super::sanitize("h\u{e9}llo \u{20ac}".as_bytes()),
            "h\u{e9}llo \u{20ac}".as_bytes()
        );
        // A sequence split across two writes is joined, not escaped.
        let (mut pending, mut out) = (Vec::new(), Vec::new());
        let euro = "\u{20ac}".as_bytes();
        super::sanitize_into(&mut pending, &euro[..1], &mut out);
        super::sanitize_into(&mut pending, &euro[1..], &mut out);
        assert_eq!(out, euro);
        let (mut pending, mut out) = (Vec::new(), Vec::new());
        super::sanitize_into(&mut pending, b"\xc2", &mut out);
        super::sanitize_into(&mut pending, b"\x9b", &mut out);
        assert_eq!(out, b"M-^[");
    }
}

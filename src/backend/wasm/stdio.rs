//! Guest output to a terminal: escape sequences a guest writes could drive the user's
//! terminal, so unless the user asked for a terminal (`-t`), control characters are made
//! visible (`^[`) when stdout or stderr is a TTY. Piped output passes through untouched.

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
        Box::new(Writer(self.0))
    }
}

struct Writer(Target);

impl AsyncWrite for Writer {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let clean = sanitize(buf);
        let r = match self.0 {
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
/// caret notation (`ESC` → `^[`), as `cat -v` shows them.
pub fn sanitize(buf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len());
    for &b in buf {
        match b {
            b'\n' | b'\t' | b'\r' | 0x08 => out.push(b),
            0..=0x1f | 0x7f => {
                out.push(b'^');
                out.push(b ^ 0x40);
            }
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_become_visible() {
        assert_eq!(super::sanitize(b"\x1b[2Jhi\n\x07"), b"^[[2Jhi\n^G");
    }
}

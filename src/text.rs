//! Untrusted text made safe to print: a student's file names, layer names and exception messages
//! are clipped to a length and their control characters escaped, so that no message can run to
//! megabytes or drive a teaching assistant's terminal.

/// The last component of a path as shown to the user (`model/fashion_mnist.json` gives
/// `fashion_mnist.json`), or the whole text when it has none.
pub fn file_name(shown: &str) -> &str {
    std::path::Path::new(shown).file_name().and_then(|n| n.to_str()).unwrap_or(shown)
}

/// At most `max` characters of `s`, control characters (terminal escapes among them) written as
/// `\u{1b}`, and "..." where it was cut.
pub fn clip(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push_str("...");
            break;
        }
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// A writer that escapes control characters (other than newline and tab) on their way to a
/// terminal: every human report goes through it, so a layer name or key holding `ESC [2J` is
/// printed as `\u{1b}[2J` wherever a report quotes it. JSON needs no such pass: serde escapes.
pub struct Escaping<'a>(pub &'a mut dyn std::io::Write);

impl std::io::Write for Escaping<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let mut start = 0;
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            // C0 controls and DEL; C1 controls (U+0080..U+009F) are 0xC2 0x80..0x9F in UTF-8.
            let len = if (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f {
                1
            } else if b == 0xc2 && buf.get(i + 1).is_some_and(|c| (0x80..0xa0).contains(c)) {
                2
            } else {
                i += 1;
                continue;
            };
            self.0.write_all(&buf[start..i])?;
            let c = if len == 1 { b as u32 } else { (buf[i + 1] as u32) & 0xff };
            write!(self.0, "\\u{{{c:x}}}")?;
            i += len;
            start = i;
        }
        self.0.write_all(&buf[start..])
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_escaping_writer_escapes_controls_only() {
        use std::io::Write;
        let mut out = Vec::new();
        write!(Escaping(&mut out), "a\u{1b}[2J\tb\n\u{9b}c é\r").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\\u{1b}[2J\tb\n\\u{9b}c é\\u{d}");
    }

    #[test]
    fn clips_and_escapes() {
        assert_eq!(clip("abcdef", 3), "abc...");
        assert_eq!(clip("ok", 3), "ok");
        assert_eq!(clip("\u{1b}[2Jx", 10), "\\u{1b}[2Jx");
    }
}

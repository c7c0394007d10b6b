//! Untrusted text made safe to print: a student's file names, layer names and exception messages
//! are clipped to a length and their control characters escaped, so that no message can run to
//! megabytes or drive a teaching assistant's terminal.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_and_escapes() {
        assert_eq!(clip("abcdef", 3), "abc...");
        assert_eq!(clip("ok", 3), "ok");
        assert_eq!(clip("\u{1b}[2Jx", 10), "\\u{1b}[2Jx");
    }
}

//! Student Python read line by line, the forgiving way the static readers (`lint`, `tests_py`,
//! `gaming`) share: which lines lie inside a triple-quoted string, and a line's code apart from its
//! comment and the insides of its string literals. No parser: student files need not parse.

/// Tracks triple-quoted strings across lines.
#[derive(Default)]
pub struct Docstrings {
    open: Option<&'static str>,
}

impl Docstrings {
    /// Feeds the next line; true when it starts inside a triple-quoted string (its text is no
    /// code). Toggles on every triple quote of the kind that opened the string.
    pub fn inside(&mut self, raw: &str) -> bool {
        let was = self.open.is_some();
        for q in ["\"\"\"", "'''"] {
            if self.open.is_none_or(|open| open == q) && raw.matches(q).count() % 2 == 1 {
                self.open = if self.open.is_some() { None } else { Some(q) };
            }
        }
        was
    }
}

/// A line's code without its comment (a `#` outside quotes), and the same with the insides of its
/// string literals blanked (so that code in a string is no code).
pub fn split(line: &str) -> (&str, String) {
    let mut blanked = String::with_capacity(line.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                    blanked.push(c);
                    continue;
                }
                blanked.push(' ');
            }
            None if c == '#' => return (&line[..i], blanked),
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
                blanked.push(c);
            }
        }
    }
    (line, blanked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docstrings_span_lines_and_mixed_quotes_do_not_close_them() {
        let mut d = Docstrings::default();
        let inside: Vec<bool> =
            ["x = 1", "\"\"\"doc", "it's ''' here", "end\"\"\"", "y = 2"].iter().map(|l| d.inside(l)).collect();
        assert_eq!(inside, [false, false, true, true, false]);
    }

    #[test]
    fn comments_and_strings_are_told_apart() {
        assert_eq!(split("a = '#x'  # c"), ("a = '#x'  ", "a = '  '  ".to_string()));
        assert_eq!(split(r#"print("sys.exit(0)\"")"#).1, r#"print("             ")"#);
    }
}

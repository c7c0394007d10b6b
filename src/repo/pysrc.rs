//! Student Python read line by line, the forgiving way the static readers (`lint`, `paths`,
//! `tests_py`, `gaming`) share: which lines lie inside a triple-quoted string, a line's code apart
//! from its comment and the insides of its string literals, the blocks (`def`, `if`, `try`, ...)
//! around each line, and the string literals on a line. No parser: student files need not parse.

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

/// A block of Python code, as its header line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// `def name(...):` or `async def name(...):`.
    Def(String),
    /// `if __name__ == "__main__":`, which never runs under pytest.
    Main,
    /// `try:`: an exception raised inside may be caught.
    Try,
    /// `except ...:`: runs only when the `try` before it raised.
    Except,
    /// `if`, `elif`, `else`, `while`, `match`, `case`: runs only when its condition holds.
    Branch,
    /// `for`, `with`, `class`, `finally`.
    Other,
}

/// One line of code with the blocks around it, as [`code_lines`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeLine<'a> {
    /// 1-based.
    pub number: usize,
    /// The line without its comment, trimmed.
    pub code: &'a str,
    /// `code` with the insides of its string literals blanked.
    pub bare: String,
    /// The blocks the line is in, outermost first.
    pub blocks: Vec<Block>,
    /// The block whose header this line is, or continues (a header over several lines).
    pub opens: Option<Block>,
    /// Where a one-line block's body starts in `code`: `import x` in `try: import x`.
    pub body_at: Option<usize>,
}

impl CodeLine<'_> {
    /// The body of a one-line block (`import x` in `try: import x`), if the line is one.
    pub fn body(&self) -> Option<&str> {
        self.body_at.map(|at| &self.code[at..])
    }

    /// The byte offset in `code` of the character at byte `at` of `bare` (they differ after a
    /// string holding non-ASCII characters).
    pub fn code_at(&self, at: usize) -> usize {
        let n = self.bare[..at].chars().count();
        self.code.char_indices().nth(n).map_or(self.code.len(), |(i, _)| i)
    }

    /// The blocks around the code at byte `at` of `code`: the line's blocks, plus the block the
    /// line opens when `at` lies inside it (a one-line body, or a `def` header, whose default
    /// values belong to the function).
    pub fn blocks_at(&self, at: usize) -> Vec<Block> {
        let mut blocks = self.blocks.clone();
        match &self.opens {
            Some(b @ Block::Def(_)) => blocks.push(b.clone()),
            Some(b) if self.body_at.is_some_and(|body| at >= body) => blocks.push(b.clone()),
            _ => {}
        }
        blocks
    }
}

/// The innermost function in `blocks` (`None` at module level), and the blocks inside it.
pub fn function_of(blocks: &[Block]) -> (Option<&str>, &[Block]) {
    for (i, b) in blocks.iter().enumerate().rev() {
        if let Block::Def(name) = b {
            return (Some(name.as_str()), &blocks[i + 1..]);
        }
    }
    (None, blocks)
}

/// The block a line's first word opens, if it is a compound statement's keyword.
fn header_kind(code: &str) -> Option<Block> {
    let word = |s: &str| s.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("").to_string();
    let kind = match word(code).as_str() {
        "def" => Block::Def(word(code["def".len()..].trim_start())),
        "async" => {
            let rest = code["async".len()..].trim_start();
            return if word(rest) == "def" { header_kind(rest) } else { Some(Block::Other) };
        }
        "if" if code.contains("__name__") && code.contains("__main__") => Block::Main,
        "if" | "elif" | "else" | "while" | "match" | "case" => Block::Branch,
        "try" => Block::Try,
        "except" => Block::Except,
        "for" | "with" | "class" | "finally" => Block::Other,
        _ => return None,
    };
    Some(kind)
}

/// Scans a line's code (and its blanked form) from bracket depth `depth`: the depth at its end,
/// and the byte offset in `code` of the first `:` at depth 0 that is no `:=`.
fn scan(code: &str, bare: &str, mut depth: i32) -> (i32, Option<usize>) {
    let mut colon = None;
    let mut chars = code.char_indices().map(|(at, _)| at).zip(bare.chars()).peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ':' if depth == 0 && colon.is_none() && chars.peek().is_none_or(|(_, n)| *n != '=') => colon = Some(at),
            _ => {}
        }
    }
    (depth, colon)
}

/// Every line of code in `text` (no blank line, comment or triple-quoted string) with the blocks
/// around it, told by indentation. A statement over several lines (open brackets) stays in the
/// blocks of its first line, whatever the indentation of the rest.
pub fn code_lines(text: &str) -> Vec<CodeLine<'_>> {
    let mut out = Vec::new();
    let mut docstrings = Docstrings::default();
    let mut stack: Vec<(usize, Block)> = Vec::new();
    // Brackets left open by earlier lines, and a header waiting for its colon.
    let mut depth = 0;
    let mut pending: Option<(usize, Block)> = None;
    for (i, raw) in text.lines().enumerate() {
        if docstrings.inside(raw) {
            continue;
        }
        let (untrimmed, blanked) = split(raw);
        let code = untrimmed.trim();
        if code.is_empty() {
            continue;
        }
        let indent = untrimmed.len() - untrimmed.trim_start().len();
        let bare: String = blanked.chars().skip(indent).take(code.chars().count()).collect();
        let continued = depth > 0;
        if !continued {
            while stack.last().is_some_and(|(ind, _)| *ind >= indent) {
                stack.pop();
            }
            pending = header_kind(code).map(|b| (indent, b));
        }
        let (end, colon) = scan(code, &bare, depth);
        depth = end.max(0);
        let mut line = CodeLine {
            number: i + 1,
            code,
            bare,
            blocks: stack.iter().map(|(_, b)| b.clone()).collect(),
            opens: pending.as_ref().map(|(_, b)| b.clone()),
            body_at: None,
        };
        if depth == 0
            && let Some((ind, block)) = pending.take()
        {
            match colon.map(|c| code[c + 1..].trim_start()) {
                Some("") => stack.push((ind, block)),
                Some(body) => line.body_at = Some(code.len() - body.len()),
                // No colon where the header ends: no header after all (`match = 3`).
                None => line.opens = None,
            }
        }
        out.push(line);
    }
    out
}

/// A string literal on one line of code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal<'a> {
    /// Byte offset of the literal (its prefix) in the line.
    pub at: usize,
    /// `r`, `f`, `rb`, ... as written (empty for none).
    pub prefix: &'a str,
    /// What lies between the quotes, escapes as written.
    pub body: &'a str,
    /// The literal as written, prefix and quotes included.
    pub text: &'a str,
}

impl Literal<'_> {
    /// The string's value as far as a path needs it: `\\`, `\'` and `\"` resolved unless the
    /// literal is raw (other escapes kept as written), and an f-string cut at its first
    /// replacement field.
    pub fn value(&self) -> String {
        let prefix = self.prefix.to_ascii_lowercase();
        let body = if prefix.contains('f') { self.body.split('{').next().unwrap_or("") } else { self.body };
        if prefix.contains('r') {
            return body.to_string();
        }
        let mut out = String::with_capacity(body.len());
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\'
                && let Some(&n) = chars.peek()
                && matches!(n, '\\' | '\'' | '"')
            {
                out.push(n);
                chars.next();
            } else {
                out.push(c);
            }
        }
        out
    }
}

/// The string literals that open and close on `code` (a line without its comment), in order. A
/// string that goes on to later lines ends the scan.
pub fn literals(code: &str) -> Vec<Literal<'_>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let q = bytes[i];
        if q != b'"' && q != b'\'' {
            i += 1;
            continue;
        }
        // The prefix: up to two of r, b, u, f right before the quote, after no identifier.
        let mut start = i;
        while start > 0 && i - start < 2 && b"rRbBuUfF".contains(&bytes[start - 1]) {
            start -= 1;
        }
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            start = i;
        }
        let quotes = if bytes[i..].starts_with(&[q, q, q]) { 3 } else { 1 };
        let closing = &[q, q, q][..quotes];
        let mut j = i + quotes;
        while j < bytes.len() && !bytes[j..].starts_with(closing) {
            // A backslash escapes the next character, in raw strings too (`r'\''`).
            j += if bytes[j] == b'\\' { 2 } else { 1 };
        }
        if j >= bytes.len() {
            break;
        }
        let end = j + quotes;
        out.push(Literal { at: start, prefix: &code[start..i], body: &code[i + quotes..j], text: &code[start..end] });
        i = end;
    }
    out
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

    #[test]
    fn blocks_follow_indentation_and_headers_over_several_lines() {
        let text = "import x\ndef nn_inference(a,\n        b=1):\n    try: import y\n    if a:\n        z = f(\n'/home/amy')\n    return a\nclass C:\n    def m(self): pass\nmatch = 3\nif __name__ == '__main__':\n    run()\n";
        let lines = code_lines(text);
        type Seen<'a> = (usize, Vec<Block>, Option<Block>, Option<&'a str>);
        let got: Vec<Seen> = lines.iter().map(|l| (l.number, l.blocks.clone(), l.opens.clone(), l.body())).collect();
        let def = || Block::Def("nn_inference".into());
        assert_eq!(
            got,
            [
                (1, vec![], None, None),
                (2, vec![], Some(def()), None),
                (3, vec![], Some(def()), None),
                (4, vec![def()], Some(Block::Try), Some("import y")),
                (5, vec![def()], Some(Block::Branch), None),
                (6, vec![def(), Block::Branch], None, None),
                // A continuation line stays in its statement's blocks, whatever its indentation.
                (7, vec![def(), Block::Branch], None, None),
                (8, vec![def()], None, None),
                (9, vec![], Some(Block::Other), None),
                (10, vec![Block::Other], Some(Block::Def("m".into())), Some("pass")),
                (11, vec![], None, None),
                (12, vec![], Some(Block::Main), None),
                (13, vec![Block::Main], None, None),
            ]
        );
        // A def header's default values belong to the function; a one-line body to its block.
        assert_eq!(function_of(&lines[2].blocks_at(0)).0, Some("nn_inference"));
        let try_line = &lines[3];
        assert_eq!(try_line.blocks_at(0), [def()]);
        assert_eq!(try_line.blocks_at(try_line.body_at.unwrap()), [def(), Block::Try]);
        assert_eq!(function_of(&lines[6].blocks), (Some("nn_inference"), &[Block::Branch][..]));
        assert_eq!(function_of(&[Block::Main]), (None, &[Block::Main][..]));
    }

    #[test]
    fn literals_with_prefixes_escapes_and_triple_quotes() {
        let code =
            r#"p = open(r"C:\Users\amy") + 'D:\\hw\'s' + f'/home/{u}/x' + b"" + '''t''' + rb'\'' + x"y" + """open"#;
        let lits = literals(code);
        let got: Vec<(&str, String)> = lits.iter().map(|l| (l.prefix, l.value())).collect();
        assert_eq!(
            got,
            [
                ("r", r"C:\Users\amy".to_string()),
                ("", r"D:\hw's".to_string()),
                ("f", "/home/".to_string()),
                ("b", String::new()),
                ("", "t".to_string()),
                // A raw string keeps its backslashes, and a quote after one does not end it.
                ("rb", r"\'".to_string()),
                // An identifier before the quote is no prefix.
                ("", "y".to_string()),
            ]
        );
        assert_eq!(lits[0].text, r#"r"C:\Users\amy""#);
        assert_eq!(&code[lits[1].at..lits[1].at + 1], "'");
    }
}

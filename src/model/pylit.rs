//! The subset of Python's `ast.literal_eval` that NumPy uses to read a `.npy` header, with its
//! exact acceptance rules: single- and double-quoted (and prefixed, raw, adjacent, triple-quoted)
//! strings, ints in every Python spelling, one unary sign, True/False/None, tuples, lists, dicts
//! (a repeated key keeps its last value, like Python), comments, implicit line joining inside
//! brackets, and the tokenizer's line rules at the top level (an indented line is an error). What
//! Python would refuse is refused, so that fmtool reads a header exactly when NumPy does.

/// A Python literal value, as far as a `.npy` header needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Bytes(Vec<u8>),
    /// An int; `None` when it does not fit in an i128 (Python ints are unbounded).
    Int(Option<i128>),
    Bool(bool),
    NoneVal,
    /// Floats, complex numbers and sets: valid literals no header field accepts.
    Other,
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    /// A dict with string keys, a repeated key replaced in place (Python keeps the first key's
    /// position and the last value). `None` marks a dict with a key that is not a str.
    Dict(Option<Vec<(String, Lit)>>),
}

/// Parses `src` as `ast.literal_eval` does; `drop_long_suffix` also drops an `L` right after a
/// number (NumPy's `_filter_header` retry for Python 2 headers).
pub fn literal_eval(src: &str, drop_long_suffix: bool) -> Result<Lit, String> {
    let src = src.trim_start_matches([' ', '\t']);
    // The retry goes through Python's tokenize/untokenize, which drops whitespace at the very end.
    let src = if drop_long_suffix { src.trim_end_matches([' ', '\t', '\x0c']) } else { src };
    let mut p = Parser { s: src.as_bytes(), src, i: 0, depth: 0, drop_l: drop_long_suffix, started: false };
    p.skip_top_blank()?;
    p.started = true;
    let v = p.expr_list()?;
    p.skip_ws()?;
    if p.i < p.s.len() {
        // Only blank lines may follow; anything else is a second statement or an indent.
        p.skip_top_blank()?;
        if p.i < p.s.len() {
            return Err(format!("unexpected text after the header dict at byte {}", p.i));
        }
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    /// Bracket depth: inside brackets newlines and indentation mean nothing.
    depth: usize,
    drop_l: bool,
    started: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Skips blank lines at the top level (whitespace then a newline, a comment, or the end of
    /// the text). A line holding text after whitespace is an indent error, as is trailing
    /// whitespace at the very end after a newline.
    fn skip_top_blank(&mut self) -> Result<(), String> {
        loop {
            let line_start = self.i;
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\x0c')) {
                self.i += 1;
            }
            match self.peek() {
                None => {
                    if self.i > line_start && (self.started || line_start > 0) {
                        return Err("unexpected indent at the end of the header".into());
                    }
                    return Ok(());
                }
                Some(b'#') => {
                    while !matches!(self.peek(), None | Some(b'\n' | b'\r')) {
                        self.i += 1;
                    }
                }
                Some(b'\n' | b'\r') => {}
                Some(b'\\') if matches!(self.s.get(self.i + 1), Some(b'\n' | b'\r')) => {
                    self.i += 1;
                }
                Some(_) => {
                    if self.i > line_start && (self.started || line_start > 0) {
                        return Err("unexpected indent".into());
                    }
                    if self.started {
                        return Err(format!("unexpected text after the header dict at byte {}", self.i));
                    }
                    return Ok(());
                }
            }
            match self.peek() {
                Some(b'\r') => {
                    self.i += 1;
                    if self.peek() == Some(b'\n') {
                        self.i += 1;
                    }
                }
                Some(b'\n') => self.i += 1,
                _ => {}
            }
        }
    }

    /// Skips whitespace and comments; newlines only inside brackets (and escaped ones anywhere).
    fn skip_ws(&mut self) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\x0c') => self.i += 1,
                Some(b'\n' | b'\r') if self.depth > 0 => self.i += 1,
                Some(b'#') => {
                    while !matches!(self.peek(), None | Some(b'\n' | b'\r')) {
                        self.i += 1;
                    }
                }
                Some(b'\\') => match self.s.get(self.i + 1) {
                    Some(b'\n') => self.i += 2,
                    Some(b'\r') => {
                        self.i += 2;
                        if self.peek() == Some(b'\n') {
                            self.i += 1;
                        }
                    }
                    _ => return Err("stray backslash".into()),
                },
                _ => return Ok(()),
            }
        }
    }

    fn eat(&mut self, c: u8) -> Result<bool, String> {
        self.skip_ws()?;
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// The top-level expression: `a` or a bare tuple `a, b,`.
    fn expr_list(&mut self) -> Result<Lit, String> {
        let first = self.atom()?;
        if !self.eat(b',')? {
            return Ok(first);
        }
        let mut items = vec![first];
        loop {
            self.skip_ws()?;
            if matches!(self.peek(), None | Some(b'\n' | b'\r' | b'#')) {
                return Ok(Lit::Tuple(items));
            }
            items.push(self.atom()?);
            if !self.eat(b',')? {
                return Ok(Lit::Tuple(items));
            }
        }
    }

    /// Items up to `close`, separated by commas, a trailing comma allowed. Returns the items and
    /// whether there was any comma.
    fn seq(&mut self, close: u8) -> Result<(Vec<Lit>, bool), String> {
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            if self.eat(close)? {
                return Ok((items, comma));
            }
            items.push(self.atom()?);
            if self.eat(b',')? {
                comma = true;
                continue;
            }
            if self.eat(close)? {
                return Ok((items, comma));
            }
            return Err(format!("expected ',' or '{}' at byte {}", close as char, self.i));
        }
    }

    fn atom(&mut self) -> Result<Lit, String> {
        self.skip_ws()?;
        let Some(c) = self.peek() else { return Err("unexpected end of the header".into()) };
        match c {
            b'(' => {
                self.i += 1;
                self.depth += 1;
                let (items, comma) = self.seq(b')')?;
                self.depth -= 1;
                Ok(if items.len() == 1 && !comma { items.into_iter().next().expect("one") } else { Lit::Tuple(items) })
            }
            b'[' => {
                self.i += 1;
                self.depth += 1;
                let (items, _) = self.seq(b']')?;
                self.depth -= 1;
                Ok(Lit::List(items))
            }
            b'{' => {
                self.i += 1;
                self.depth += 1;
                let v = self.dict_or_set()?;
                self.depth -= 1;
                Ok(v)
            }
            b'+' | b'-' => {
                self.i += 1;
                self.skip_ws()?;
                match self.peek() {
                    Some(b'0'..=b'9' | b'.') => {}
                    _ => return Err("a sign must be followed by a number".into()),
                }
                let v = self.number()?;
                Ok(match (c, v) {
                    (b'-', Lit::Int(Some(n))) => Lit::Int(n.checked_neg()),
                    (_, v) => v,
                })
            }
            b'0'..=b'9' | b'.' => self.number(),
            b'\'' | b'"' => self.strings(),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                    self.i += 1;
                }
                if matches!(self.peek(), Some(b'\'' | b'"')) && self.i - start <= 2 {
                    self.i = start;
                    return self.strings();
                }
                match &self.src[start..self.i] {
                    "True" => Ok(Lit::Bool(true)),
                    "False" => Ok(Lit::Bool(false)),
                    "None" => Ok(Lit::NoneVal),
                    other => Err(format!("{other:?} is not a literal")),
                }
            }
            _ => Err(format!("unexpected character {:?} at byte {}", c as char, self.i)),
        }
    }

    fn dict_or_set(&mut self) -> Result<Lit, String> {
        if self.eat(b'}')? {
            return Ok(Lit::Dict(Some(Vec::new())));
        }
        let first = self.atom()?;
        if !self.eat(b':')? {
            // A set: its items must still parse; its value is never a valid header.
            let mut rest = self.seq_after_first(b'}')?;
            rest.push(first);
            return Ok(Lit::Other);
        }
        let mut pairs: Option<Vec<(String, Lit)>> = Some(Vec::new());
        let mut key = first;
        loop {
            let value = self.atom()?;
            match (&mut pairs, key) {
                (Some(ps), Lit::Str(k)) => match ps.iter_mut().find(|(pk, _)| *pk == k) {
                    Some(slot) => slot.1 = value,
                    None => ps.push((k, value)),
                },
                (_, Lit::List(_) | Lit::Dict(_)) => return Err("unhashable dict key".into()),
                _ => pairs = None,
            }
            if self.eat(b',')? {
                if self.eat(b'}')? {
                    return Ok(Lit::Dict(pairs));
                }
            } else if self.eat(b'}')? {
                return Ok(Lit::Dict(pairs));
            } else {
                return Err(format!("expected ',' or '}}' at byte {}", self.i));
            }
            key = self.atom()?;
            if !self.eat(b':')? {
                return Err(format!("expected ':' at byte {}", self.i));
            }
        }
    }

    fn seq_after_first(&mut self, close: u8) -> Result<Vec<Lit>, String> {
        if self.eat(close)? {
            return Ok(Vec::new());
        }
        if !self.eat(b',')? {
            return Err(format!("expected ',' at byte {}", self.i));
        }
        Ok(self.seq(close)?.0)
    }

    fn number(&mut self) -> Result<Lit, String> {
        let start = self.i;
        let s = self.s;
        let mut j = self.i;
        let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'.';
        while j < s.len() && is_ident(s[j]) {
            // An exponent's sign belongs to the number.
            if (s[j] == b'e' || s[j] == b'E')
                && j + 1 < s.len()
                && matches!(s[j + 1], b'+' | b'-')
                && !self.src[start..j].starts_with("0x")
                && !self.src[start..j].starts_with("0X")
            {
                j += 2;
                continue;
            }
            j += 1;
        }
        let mut text = &self.src[start..j];
        self.i = j;
        // Python 2's long suffix, kept only on the retry NumPy makes for Python 2 headers.
        let mut dropped_l = false;
        if self.drop_l && text.len() > 1 && text.ends_with('L') && int_value(&text[..text.len() - 1]).is_some() {
            text = &text[..text.len() - 1];
            dropped_l = true;
        }
        if let Some(v) = int_value(text) {
            if !dropped_l && self.drop_l {
                // `784 L`: the tokenizer gives NUMBER then NAME "L", which the filter drops too.
                let save = self.i;
                let _ = self.skip_ws();
                if self.peek() == Some(b'L')
                    && !self.s.get(self.i + 1).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    self.i += 1;
                } else {
                    self.i = save;
                }
            }
            return Ok(Lit::Int(v));
        }
        if is_float(text) {
            return Ok(Lit::Other);
        }
        Err(format!("invalid number {text:?}"))
    }

    /// One or more adjacent string literals, concatenated (str with str, bytes with bytes).
    fn strings(&mut self) -> Result<Lit, String> {
        let mut out: Option<Lit> = None;
        loop {
            self.skip_ws()?;
            let start = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                self.i += 1;
            }
            let prefix = self.src[start..self.i].to_ascii_lowercase();
            if !matches!(self.peek(), Some(b'\'' | b'"')) {
                self.i = start;
                break;
            }
            let (bytes, raw) = match prefix.as_str() {
                "" | "u" => (false, false),
                "r" => (false, true),
                "b" => (true, false),
                "br" | "rb" => (true, true),
                _ => return Err(format!("string prefix {prefix:?} is not a plain literal")),
            };
            let piece = self.string_body(bytes, raw)?;
            out = Some(match (out, piece) {
                (None, p) => p,
                (Some(Lit::Str(a)), Lit::Str(b)) => Lit::Str(a + &b),
                (Some(Lit::Bytes(mut a)), Lit::Bytes(b)) => {
                    a.extend(b);
                    Lit::Bytes(a)
                }
                _ => return Err("cannot mix bytes and str literals".into()),
            });
            let save = self.i;
            self.skip_ws()?;
            let next = self.peek();
            let starts_string = match next {
                Some(b'\'' | b'"') => true,
                Some(c) if c.is_ascii_alphabetic() => {
                    let mut k = self.i;
                    while k < self.s.len() && self.s[k].is_ascii_alphabetic() {
                        k += 1;
                    }
                    k - self.i <= 2 && matches!(self.s.get(k), Some(b'\'' | b'"'))
                }
                _ => false,
            };
            if !starts_string {
                self.i = save;
                break;
            }
        }
        out.ok_or_else(|| "expected a string".into())
    }

    fn string_body(&mut self, bytes: bool, raw: bool) -> Result<Lit, String> {
        let q = self.s[self.i];
        let triple = self.s.get(self.i..self.i + 3) == Some(&[q, q, q][..]);
        self.i += if triple { 3 } else { 1 };
        let mut out: Vec<u8> = Vec::new();
        let push_char = |out: &mut Vec<u8>, c: u32| -> Result<(), String> {
            if bytes {
                if c > 0xff {
                    return Err("bytes can only contain ASCII".into());
                }
                out.push(c as u8);
            } else {
                let ch = char::from_u32(c).ok_or("invalid code point")?;
                let mut b = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
            }
            Ok(())
        };
        loop {
            let Some(c) = self.peek() else { return Err("unterminated string".into()) };
            if c == q && (!triple || self.s.get(self.i..self.i + 3) == Some(&[q, q, q][..])) {
                self.i += if triple { 3 } else { 1 };
                break;
            }
            if (c == b'\n' || c == b'\r') && !triple {
                return Err("unterminated string".into());
            }
            if c == 0 {
                return Err("null byte".into());
            }
            if c == b'\\' {
                let Some(&e) = self.s.get(self.i + 1) else { return Err("unterminated string".into()) };
                if raw {
                    out.push(b'\\');
                    out.push(e);
                    self.i += 2;
                    continue;
                }
                self.i += 2;
                let simple = match e {
                    b'\n' => Some(None),
                    b'\\' => Some(Some(b'\\')),
                    b'\'' => Some(Some(b'\'')),
                    b'"' => Some(Some(b'"')),
                    b'a' => Some(Some(7)),
                    b'b' => Some(Some(8)),
                    b'f' => Some(Some(12)),
                    b'n' => Some(Some(b'\n')),
                    b'r' => Some(Some(b'\r')),
                    b't' => Some(Some(b'\t')),
                    b'v' => Some(Some(11)),
                    _ => None,
                };
                if let Some(v) = simple {
                    out.extend(v);
                    continue;
                }
                match e {
                    b'0'..=b'7' => {
                        let mut v = (e - b'0') as u32;
                        for _ in 0..2 {
                            match self.peek() {
                                Some(d @ b'0'..=b'7') => {
                                    v = v * 8 + (d - b'0') as u32;
                                    self.i += 1;
                                }
                                _ => break,
                            }
                        }
                        push_char(&mut out, v)?;
                    }
                    b'x' | b'u' | b'U' if e == b'x' || !bytes => {
                        let n = match e {
                            b'x' => 2,
                            b'u' => 4,
                            _ => 8,
                        };
                        let hex = self.s.get(self.i..self.i + n).ok_or("truncated escape")?;
                        let hex = std::str::from_utf8(hex).map_err(|_| "bad escape")?;
                        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return Err("bad escape".into());
                        }
                        let v = u32::from_str_radix(hex, 16).map_err(|_| "bad escape")?;
                        self.i += n;
                        push_char(&mut out, v)?;
                    }
                    b'N' if !bytes => return Err("\\N{...} escapes are not supported".into()),
                    _ => {
                        // Python keeps an unknown escape as written (with a warning).
                        out.push(b'\\');
                        self.i -= 1;
                    }
                }
                continue;
            }
            if bytes && c >= 0x80 {
                return Err("bytes can only contain ASCII".into());
            }
            out.push(c);
            self.i += 1;
        }
        Ok(if bytes {
            Lit::Bytes(out)
        } else {
            Lit::Str(String::from_utf8(out).map_err(|_| "invalid text in a string")?)
        })
    }
}

/// The value of a Python int literal (`12`, `1_000`, `0x1F`, `0o17`, `0b101`, `00`), `None` when
/// the text is not one; `Some(None)` for an int too large for an i128.
fn int_value(t: &str) -> Option<Option<i128>> {
    let (digits, radix) = match t.get(..2).map(str::to_ascii_lowercase).as_deref() {
        Some("0x") => (&t[2..], 16),
        Some("0o") => (&t[2..], 8),
        Some("0b") => (&t[2..], 2),
        _ => (t, 10),
    };
    // Underscores only between digits (after the prefix, one may directly follow it).
    let body = if radix != 10 { digits.strip_prefix('_').unwrap_or(digits) } else { digits };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let clean: String = body.chars().filter(|&c| c != '_').collect();
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if radix == 10 && clean.len() > 1 && clean.starts_with('0') && clean.chars().any(|c| c != '0') {
        return None;
    }
    Some(i128::from_str_radix(&clean, radix).ok())
}

fn is_float(t: &str) -> bool {
    let imaginary = t.ends_with(['j', 'J']);
    let t = t.strip_suffix(['j', 'J']).unwrap_or(t);
    if !imaginary && !t.contains(['.', 'e', 'E']) {
        return false;
    }
    let clean: String = t.chars().filter(|&c| c != '_').collect();
    !t.contains("__")
        && !t.starts_with('_')
        && clean.parse::<f64>().is_ok()
        && clean.bytes().any(|b| b.is_ascii_digit())
        && !clean.contains(['i', 'n', 'I', 'N'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Lit {
        literal_eval(s, false).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn python_acceptance_rules() {
        assert_eq!(ok("(784, 128)"), Lit::Tuple(vec![Lit::Int(Some(784)), Lit::Int(Some(128))]));
        assert_eq!(ok("(1)"), Lit::Int(Some(1)));
        assert_eq!(ok("\"a\" 'b'"), Lit::Str("ab".into()));
        assert_eq!(ok("-  1"), Lit::Int(Some(-1)));
        assert_eq!(ok("0x_1f"), Lit::Int(Some(31)));
        assert_eq!(ok("{'a': 1, 'a': 2,}"), Lit::Dict(Some(vec![("a".into(), Lit::Int(Some(2)))])));
        assert_eq!(ok("{1:2}  \n\n  \n"), Lit::Dict(None));
        assert_eq!(ok("\n{'a':\n 1} # c\n"), Lit::Dict(Some(vec![("a".into(), Lit::Int(Some(1)))])));
        for bad in
            ["{1:2}\n  ", "\n  {1:2}", "--1", "007", "1__0", "'a' b'b'", "{1:2};", "{1:2}\0", "{1:2}\x0b", "{**a}"]
        {
            assert!(literal_eval(bad, false).is_err(), "{bad:?} must be refused");
        }
        assert!(literal_eval("(784L,)", false).is_err());
        assert_eq!(literal_eval("(784L,)", true).unwrap(), Lit::Tuple(vec![Lit::Int(Some(784))]));
    }
}

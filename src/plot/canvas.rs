//! A tiny RGB raster for the `--plot` pictures: rectangles, grey images, and text in a built-in
//! 5x7 bitmap font (no font files, no system libraries), encoded as PNG with the `png` crate.

use crate::err;
use crate::error::Result;

pub type Rgb = [u8; 3];

pub const WHITE: Rgb = [255, 255, 255];
pub const BLACK: Rgb = [0, 0, 0];

/// Glyph cell: 5 columns, 8 rows (7 above the baseline and one for descenders).
pub const GLYPH_W: usize = 5;
pub const GLYPH_H: usize = 8;
/// Horizontal distance from one character to the next, at scale 1.
pub const ADVANCE: usize = GLYPH_W + 1;

/// The font: each glyph is 8 rows of 5 columns, `#` for ink, rows separated by spaces. Capitals
/// and digits use rows 1-7, lower case has its x-height on rows 3-7 and descenders on row 8.
const FONT: &[(char, &str)] = &[
    (' ', "..... ..... ..... ..... ..... ..... ..... ....."),
    ('0', ".###. #...# #..## #.#.# ##..# #...# .###. ....."),
    ('1', "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###. ....."),
    ('2', ".###. #...# ....# ...#. ..#.. .#... ##### ....."),
    ('3', "##### ...#. ..#.. ...#. ....# #...# .###. ....."),
    ('4', "...#. ..##. .#.#. #..#. ##### ...#. ...#. ....."),
    ('5', "##### #.... ####. ....# ....# #...# .###. ....."),
    ('6', "..##. .#... #.... ####. #...# #...# .###. ....."),
    ('7', "##### ....# ...#. ..#.. .#... .#... .#... ....."),
    ('8', ".###. #...# #...# .###. #...# #...# .###. ....."),
    ('9', ".###. #...# #...# .#### ....# ...#. .##.. ....."),
    ('A', ".###. #...# #...# ##### #...# #...# #...# ....."),
    ('B', "####. #...# #...# ####. #...# #...# ####. ....."),
    ('C', ".###. #...# #.... #.... #.... #...# .###. ....."),
    ('D', "###.. #..#. #...# #...# #...# #..#. ###.. ....."),
    ('E', "##### #.... #.... ####. #.... #.... ##### ....."),
    ('F', "##### #.... #.... ####. #.... #.... #.... ....."),
    ('G', ".###. #...# #.... #.### #...# #...# .#### ....."),
    ('H', "#...# #...# #...# ##### #...# #...# #...# ....."),
    ('I', ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###. ....."),
    ('J', "..### ...#. ...#. ...#. ...#. #..#. .##.. ....."),
    ('K', "#...# #..#. #.#.. ##... #.#.. #..#. #...# ....."),
    ('L', "#.... #.... #.... #.... #.... #.... ##### ....."),
    ('M', "#...# ##.## #.#.# #.#.# #...# #...# #...# ....."),
    ('N', "#...# #...# ##..# #.#.# #..## #...# #...# ....."),
    ('O', ".###. #...# #...# #...# #...# #...# .###. ....."),
    ('P', "####. #...# #...# ####. #.... #.... #.... ....."),
    ('Q', ".###. #...# #...# #...# #.#.# #..#. .##.# ....."),
    ('R', "####. #...# #...# ####. #.#.. #..#. #...# ....."),
    ('S', ".#### #.... #.... .###. ....# ....# ####. ....."),
    ('T', "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ....."),
    ('U', "#...# #...# #...# #...# #...# #...# .###. ....."),
    ('V', "#...# #...# #...# #...# #...# .#.#. ..#.. ....."),
    ('W', "#...# #...# #...# #.#.# #.#.# #.#.# .#.#. ....."),
    ('X', "#...# #...# .#.#. ..#.. .#.#. #...# #...# ....."),
    ('Y', "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.. ....."),
    ('Z', "##### ....# ...#. ..#.. .#... #.... ##### ....."),
    ('a', "..... ..... .###. ....# .#### #...# .#### ....."),
    ('b', "#.... #.... #.##. ##..# #...# #...# ####. ....."),
    ('c', "..... ..... .###. #.... #.... #...# .###. ....."),
    ('d', "....# ....# .##.# #..## #...# #...# .#### ....."),
    ('e', "..... ..... .###. #...# ##### #.... .###. ....."),
    ('f', "..##. .#..# .#... ###.. .#... .#... .#... ....."),
    ('g', "..... ..... .#### #...# #...# .#### ....# .###."),
    ('h', "#.... #.... #.##. ##..# #...# #...# #...# ....."),
    ('i', "..#.. ..... .##.. ..#.. ..#.. ..#.. .###. ....."),
    ('j', "...#. ..... ..##. ...#. ...#. ...#. #..#. .##.."),
    ('k', "#.... #.... #..#. #.#.. ##... #.#.. #..#. ....."),
    ('l', ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###. ....."),
    ('m', "..... ..... ##.#. #.#.# #.#.# #...# #...# ....."),
    ('n', "..... ..... #.##. ##..# #...# #...# #...# ....."),
    ('o', "..... ..... .###. #...# #...# #...# .###. ....."),
    ('p', "..... ..... ####. #...# #...# ####. #.... #...."),
    ('q', "..... ..... .#### #...# #...# .#### ....# ....#"),
    ('r', "..... ..... #.##. ##..# #.... #.... #.... ....."),
    ('s', "..... ..... .###. #.... .###. ....# ####. ....."),
    ('t', ".#... .#... ###.. .#... .#... .#..# ..##. ....."),
    ('u', "..... ..... #...# #...# #...# #..## .##.# ....."),
    ('v', "..... ..... #...# #...# #...# .#.#. ..#.. ....."),
    ('w', "..... ..... #...# #...# #.#.# #.#.# .#.#. ....."),
    ('x', "..... ..... #...# .#.#. ..#.. .#.#. #...# ....."),
    ('y', "..... ..... #...# #...# #...# .#### ....# .###."),
    ('z', "..... ..... ##### ...#. ..#.. .#... ##### ....."),
    ('.', "..... ..... ..... ..... ..... .##.. .##.. ....."),
    (',', "..... ..... ..... ..... ..... .##.. ..#.. .#..."),
    (':', "..... .##.. .##.. ..... .##.. .##.. ..... ....."),
    (';', "..... .##.. .##.. ..... .##.. ..#.. .#... ....."),
    ('-', "..... ..... ..... .###. ..... ..... ..... ....."),
    ('+', "..... ..#.. ..#.. ##### ..#.. ..#.. ..... ....."),
    ('=', "..... ..... ##### ..... ##### ..... ..... ....."),
    ('_', "..... ..... ..... ..... ..... ..... ##### ....."),
    ('/', "..... ....# ...#. ..#.. .#... #.... ..... ....."),
    ('>', ".#... ..#.. ...#. ....# ...#. ..#.. .#... ....."),
    ('<', "...#. ..#.. .#... #.... .#... ..#.. ...#. ....."),
    ('→', "..... ..#.. ...#. ##### ...#. ..#.. ..... ....."),
    ('#', ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#. ....."),
    ('(', "...#. ..#.. .#... .#... .#... ..#.. ...#. ....."),
    (')', ".#... ..#.. ...#. ...#. ...#. ..#.. .#... ....."),
    ('%', "##... ##..# ...#. ..#.. .#... #..## ...## ....."),
    ('\'', "..#.. ..#.. .#... ..... ..... ..... ..... ....."),
    ('!', "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.. ....."),
    ('?', ".###. #...# ....# ...#. ..#.. ..... ..#.. ....."),
];

/// The rows of `c`'s glyph as 5-bit masks (bit 4 is the left column); unknown characters are '?'.
fn glyph(c: char) -> [u8; GLYPH_H] {
    let art = FONT.iter().find(|(g, _)| *g == c).or_else(|| FONT.iter().find(|(g, _)| *g == '?')).map(|(_, a)| *a);
    let mut rows = [0u8; GLYPH_H];
    for (r, row) in art.unwrap_or("").split(' ').take(GLYPH_H).enumerate() {
        rows[r] = row.bytes().fold(0, |m, b| (m << 1) | u8::from(b == b'#'));
    }
    rows
}

/// Width in pixels of `text` at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    let n = text.chars().count();
    if n == 0 { 0 } else { (n * ADVANCE - 1) * scale }
}

/// An RGB picture being drawn.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, background: Rgb) -> Canvas {
        let pixels = background.iter().copied().cycle().take(width * height * 3).collect();
        Canvas { width, height, pixels }
    }

    #[cfg(test)]
    pub fn get(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.width + x) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Sets one pixel; pixels outside the canvas are ignored so callers need not clip.
    pub fn set(&mut self, x: usize, y: usize, c: Rgb) {
        if x < self.width && y < self.height {
            let i = (y * self.width + x) * 3;
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    pub fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, c: Rgb) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, c);
            }
        }
    }

    /// A one-pixel rectangle outline.
    pub fn outline(&mut self, x: usize, y: usize, w: usize, h: usize, c: Rgb) {
        self.fill(x, y, w, 1, c);
        self.fill(x, y + h - 1, w, 1, c);
        self.fill(x, y, 1, h, c);
        self.fill(x + w - 1, y, 1, h, c);
    }

    /// Draws a grey image (`w` x `h` bytes, 0 black) with each pixel as a `scale` x `scale` square.
    pub fn grey_image(&mut self, x: usize, y: usize, pixels: &[u8], w: usize, scale: usize) {
        for (i, &v) in pixels.iter().enumerate() {
            self.fill(x + (i % w) * scale, y + (i / w) * scale, scale, scale, [v, v, v]);
        }
    }

    /// Writes `text` with its top-left corner at (x, y).
    pub fn text(&mut self, x: usize, y: usize, text: &str, c: Rgb, scale: usize) {
        for (i, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..GLYPH_W {
                    if bits & (1 << (GLYPH_W - 1 - col)) != 0 {
                        self.fill(x + (i * ADVANCE + col) * scale, y + r * scale, scale, scale, c);
                    }
                }
            }
        }
    }

    /// Writes `text` turned 90 degrees anticlockwise (read from bottom to top), its first
    /// character's lower-left corner at (x, y_bottom).
    pub fn text_up(&mut self, x: usize, y_bottom: usize, text: &str, c: Rgb, scale: usize) {
        for (i, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..GLYPH_W {
                    if bits & (1 << (GLYPH_W - 1 - col)) != 0 {
                        // Glyph column -> distance up from y_bottom; glyph row -> distance right.
                        let up = (i * ADVANCE + col) * scale;
                        if up + scale <= y_bottom + 1 {
                            self.fill(x + r * scale, y_bottom + 1 - up - scale, scale, scale, c);
                        }
                    }
                }
            }
        }
    }

    /// The picture as PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.add_text_chunk(super::SOFTWARE_KEY.into(), super::SOFTWARE.into())
            .map_err(|e| err!("cannot encode a PNG: {e}"))?;
        let mut writer = enc.write_header().map_err(|e| err!("cannot encode a PNG: {e}"))?;
        writer.write_image_data(&self.pixels).map_err(|e| err!("cannot encode a PNG: {e}"))?;
        writer.finish().map_err(|e| err!("cannot encode a PNG: {e}"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_glyph_is_8_rows_of_5() {
        for (c, art) in FONT {
            let rows: Vec<&str> = art.split(' ').collect();
            assert_eq!(rows.len(), GLYPH_H, "{c:?}");
            assert!(rows.iter().all(|r| r.len() == GLYPH_W && r.bytes().all(|b| b == b'.' || b == b'#')), "{c:?}");
        }
        let mut chars: Vec<char> = FONT.iter().map(|g| g.0).collect();
        chars.sort();
        chars.dedup();
        assert_eq!(chars.len(), FONT.len(), "a character is defined twice");
    }

    #[test]
    fn the_class_names_have_glyphs() {
        for name in crate::dataset::CLASS_NAMES {
            for c in name.chars() {
                assert!(FONT.iter().any(|g| g.0 == c), "no glyph for {c:?} in {name}");
            }
        }
    }

    #[test]
    fn text_draws_the_glyph_bits() {
        let mut cv = Canvas::new(12, 8, WHITE);
        cv.text(0, 0, "1-", BLACK, 1);
        // '1' row 0 is ..#.. ; '-' row 3 is .###. starting at x = 6.
        assert_eq!(cv.get(2, 0), BLACK);
        assert_eq!(cv.get(1, 0), WHITE);
        assert_eq!((7..10).map(|x| cv.get(x, 3)).collect::<Vec<_>>(), [BLACK; 3]);
        assert_eq!(cv.get(6, 3), WHITE);
        assert_eq!(text_width("1-", 2), 22);
    }

    #[test]
    fn text_up_is_text_turned() {
        let mut flat = Canvas::new(20, 8, WHITE);
        flat.text(0, 0, "Ab", BLACK, 1);
        let mut up = Canvas::new(8, 20, WHITE);
        up.text_up(0, 19, "Ab", BLACK, 1);
        for x in 0..20 {
            for y in 0..8 {
                assert_eq!(flat.get(x, y), up.get(y, 19 - x), "({x}, {y})");
            }
        }
    }

    #[test]
    fn png_round_trips() {
        let mut cv = Canvas::new(3, 2, WHITE);
        cv.set(1, 1, [10, 20, 30]);
        let bytes = cv.png().unwrap();
        let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (3, 2));
        assert_eq!(img.get_pixel(1, 1).0, [10, 20, 30]);
        assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255]);
        assert!(super::super::written_by_fmtool(&bytes));
        assert!(!super::super::written_by_fmtool(b"\x89PNG\r\n\x1a\n"));
    }
}

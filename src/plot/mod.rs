//! PNG pictures for `fmtool score --plot DIR`: a confusion-matrix heat map and a gallery of
//! misclassified test images with their true and predicted labels. Drawing only: the command
//! decides what to draw and writes the bytes (through `atomic`).

mod canvas;

use crate::dataset::{CLASS_NAMES, Dataset};
use crate::error::Result;
use canvas::{ADVANCE, BLACK, Canvas, GLYPH_H, Rgb, WHITE, text_width};

/// The file names `--plot` writes (and overwrites) in its directory.
pub const CONFUSION_PNG: &str = "confusion-matrix.png";
pub const MISCLASSIFIED_PNG: &str = "misclassified.png";

/// The PNG text chunk that marks a picture as fmtool's own, so that `--plot` replaces its own
/// earlier pictures but never a file of the user's without `--force`.
const SOFTWARE_KEY: &str = "Software";
const SOFTWARE: &str = "fmtool --plot";

/// Whether `png` is a picture `--plot` wrote (it carries fmtool's text chunk).
pub fn written_by_fmtool(png: &[u8]) -> bool {
    let needle = format!("tEXt{SOFTWARE_KEY}\0{SOFTWARE}");
    png.starts_with(b"\x89PNG") && png.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// How many misclassified images the gallery shows at most.
pub const GALLERY_MAX: usize = 100;

const MARGIN: usize = 20;
const GREY: Rgb = [110, 110, 110];
const LIGHT_GREY: Rgb = [200, 200, 200];

/// What the plots show: the score's confusion matrix and totals, and the images misclassified.
pub struct Scored<'a> {
    /// `confusion[true][predicted]`.
    pub confusion: &'a [Vec<usize>],
    pub accuracy: f64,
    pub correct: usize,
    pub images: usize,
    pub model: &'a str,
    pub data: &'a Dataset,
    /// Which grader scored it, as the command line names it.
    pub grader: &'a str,
    /// `(image number, predicted class)` of each misclassified image, in data order.
    pub misclassified: &'a [(usize, usize)],
}

/// The plots as `(file name, PNG bytes)`.
pub fn render(s: &Scored) -> Result<Vec<(&'static str, Vec<u8>)>> {
    Ok(vec![(CONFUSION_PNG, confusion_matrix(s).png()?), (MISCLASSIFIED_PNG, gallery(s).png()?)])
}

/// A colour map: linear interpolation between evenly spaced stops, `t` in 0..=1.
fn colour_map(stops: &[Rgb], t: f64) -> Rgb {
    let t = t.clamp(0.0, 1.0) * (stops.len() - 1) as f64;
    let i = (t.floor() as usize).min(stops.len() - 2);
    let f = t - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (stops[i], stops[i + 1]);
    [mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2])]
}

/// matplotlib's "Blues" and "Reds", sampled at 0, 1/4, 1/2, 3/4, 1.
const BLUES: [Rgb; 5] = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
const REDS: [Rgb; 5] = [[255, 245, 240], [252, 187, 161], [251, 106, 74], [203, 24, 29], [103, 0, 13]];

/// Black text on light colours, white on dark ones.
fn ink_on(bg: Rgb) -> Rgb {
    let luma = 0.299 * bg[0] as f64 + 0.587 * bg[1] as f64 + 0.114 * bg[2] as f64;
    if luma < 140.0 { WHITE } else { BLACK }
}

fn class_label(c: usize) -> String {
    format!("{c} {}", CLASS_NAMES[c])
}

/// The confusion matrix: rows are true classes, columns predicted ones, each cell holding its
/// count and shaded by its share of the true class (square-root scale so that small confusions
/// still show): blue on the diagonal, red off it.
fn confusion_matrix(report: &Scored) -> Canvas {
    const S: usize = 2;
    const CELL: usize = 64;
    let n = report.confusion.len();
    let label_w = (0..n).map(|c| text_width(&class_label(c), S)).max().unwrap_or(0);
    let axis_w = GLYPH_H * S;
    let grid_x = MARGIN + axis_w + 12 + label_w + 10;
    let title_y = MARGIN;
    let legend_y = title_y + GLYPH_H * S + 8;
    let axis_title_y = legend_y + GLYPH_H + 18;
    let col_labels_bottom = axis_title_y + GLYPH_H * S + 8 + label_w;
    let grid_y = col_labels_bottom + 10;
    let right_x = grid_x + n * CELL + 10;
    let width = right_x + text_width("100.0%", S) + MARGIN;
    let footer_y = grid_y + n * CELL + 14;
    let height = footer_y + GLYPH_H + MARGIN;
    let mut cv = Canvas::new(width, height, WHITE);

    let grader = report.grader;
    cv.text(
        MARGIN,
        title_y,
        &format!("Confusion matrix: accuracy {:.4} ({} of {} correct)", report.accuracy, report.correct, report.images),
        BLACK,
        S,
    );
    cv.text(
        MARGIN,
        legend_y,
        "rows: true class, columns: predicted class. Shade: share of the true class (square-root scale); \
         blue: correct, red: mistaken. Right: share correct.",
        GREY,
        1,
    );
    let grid_w = n * CELL;
    let axis_title = "predicted class";
    cv.text(grid_x + grid_w.saturating_sub(text_width(axis_title, S)) / 2, axis_title_y, axis_title, BLACK, S);
    let true_title = "true class";
    cv.text_up(MARGIN, grid_y + (grid_w + text_width(true_title, S)) / 2, true_title, BLACK, S);

    for c in 0..n {
        let label = class_label(c);
        // Row labels right-aligned against the grid; column labels turned, reading upwards.
        let lw = text_width(&label, S);
        cv.text(grid_x - 10 - lw, grid_y + c * CELL + (CELL - GLYPH_H * S) / 2, &label, BLACK, S);
        cv.text_up(grid_x + c * CELL + (CELL - GLYPH_H * S) / 2, col_labels_bottom, &label, BLACK, S);
    }

    for (t, row) in report.confusion.iter().enumerate() {
        let total: usize = row.iter().sum();
        for (p, &count) in row.iter().enumerate() {
            let share = if total == 0 { 0.0 } else { count as f64 / total as f64 };
            let bg = match (count, t == p) {
                (0, _) => WHITE,
                (_, true) => colour_map(&BLUES, share.sqrt()),
                (_, false) => colour_map(&REDS, share.sqrt()),
            };
            let (x, y) = (grid_x + p * CELL, grid_y + t * CELL);
            cv.fill(x, y, CELL, CELL, bg);
            cv.outline(x, y, CELL, CELL, LIGHT_GREY);
            let text = count.to_string();
            let s = if text_width(&text, S) + 8 <= CELL { S } else { 1 };
            let ink = if count == 0 { LIGHT_GREY } else { ink_on(bg) };
            cv.text(x + (CELL - text_width(&text, s)) / 2, y + (CELL - GLYPH_H * s) / 2, &text, ink, s);
        }
        let share = if total == 0 { "-".to_string() } else { format!("{:.1}%", 100.0 * row[t] as f64 / total as f64) };
        cv.text(right_x, grid_y + t * CELL + (CELL - GLYPH_H * S) / 2, &share, BLACK, S);
    }
    cv.text(
        MARGIN,
        footer_y,
        &format!("model: {}   data: {}   grader: {grader}", report.model, report.data.source),
        GREY,
        1,
    );
    cv
}

/// Up to [`GALLERY_MAX`] misclassified images in data order, each shown twice its size with its
/// image number, true class and predicted class.
fn gallery(report: &Scored) -> Canvas {
    let data = report.data;
    const COLS: usize = 10;
    const ZOOM: usize = 2;
    const LINE: usize = GLYPH_H + 2;
    let side = data.cols;
    let wrong = report.misclassified;
    let shown = &wrong[..wrong.len().min(GALLERY_MAX)];
    let longest = CLASS_NAMES.iter().map(|n| n.chars().count()).max().unwrap_or(0) + 1;
    let tile_w = (longest * ADVANCE).max(side * ZOOM) + 8;
    let tile_h = data.rows * ZOOM + 4 + 3 * LINE + 8;
    let rows = shown.len().div_ceil(COLS).max(1);
    let title_y = MARGIN;
    let legend_y = title_y + GLYPH_H * 2 + 8;
    let grid_y = legend_y + GLYPH_H + 16;
    let width = MARGIN * 2 + COLS * tile_w;
    let height = grid_y + rows * tile_h + MARGIN;
    let mut cv = Canvas::new(width, height, WHITE);

    let title = if wrong.is_empty() {
        "Misclassified test images: none".to_string()
    } else {
        format!("Misclassified test images: {} of {} shown", shown.len(), wrong.len())
    };
    cv.text(MARGIN, title_y, &title, BLACK, 2);
    cv.text(
        MARGIN,
        legend_y,
        &format!(
            "Each: image number (from 0, in data order), true class, \u{2192}predicted class. The first {GALLERY_MAX} mistakes."
        ),
        GREY,
        1,
    );
    for (k, &(i, predicted)) in shown.iter().enumerate() {
        let x = MARGIN + (k % COLS) * tile_w;
        let y = grid_y + (k / COLS) * tile_h;
        let img_x = x + 2;
        let n = data.image_values();
        cv.grey_image(img_x, y, &data.pixels[i * n..(i + 1) * n], side, ZOOM);
        let ty = y + data.rows * ZOOM + 4;
        cv.text(x + 2, ty, &format!("#{i}"), GREY, 1);
        cv.text(x + 2, ty + LINE, CLASS_NAMES[data.labels[i] as usize], [0, 110, 0], 1);
        cv.text(x + 2, ty + 2 * LINE, &format!("\u{2192}{}", CLASS_NAMES[predicted]), [190, 0, 0], 1);
    }
    cv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_map_hits_its_stops() {
        assert_eq!(colour_map(&BLUES, 0.0), BLUES[0]);
        assert_eq!(colour_map(&BLUES, 1.0), BLUES[4]);
        assert_eq!(colour_map(&BLUES, 0.5), BLUES[2]);
        assert_eq!(colour_map(&REDS, 2.0), REDS[4]);
        assert_eq!(ink_on(BLUES[4]), WHITE);
        assert_eq!(ink_on(BLUES[0]), BLACK);
    }
}

//! Turns a picture a student drew or photographed (PNG or JPEG) into one Fashion-MNIST input:
//! 28x28 grey values, a light item on a black background, as the dataset's images are. Every
//! step taken is recorded so the report can say what the model was really shown.

use crate::err;
use crate::error::{Error, Result};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, metadata::Orientation};
use std::io::Cursor;
use std::path::Path;

/// The side of a Fashion-MNIST image.
pub const SIDE: usize = 28;

/// A border pixel brighter than this (on 0..=255) counts as light.
const LIGHT: f32 = 127.5;

/// The largest side fmtool decodes; a phone photo is 4000-8000 pixels wide.
pub const MAX_SIDE: u32 = 8192;
/// The most pixels fmtool decodes (a 48-megapixel photo fits), which keeps decoding under 1 GB.
pub const MAX_PIXELS: u64 = 50_000_000;

/// What a PNG or JPEG that was cut short lacks: its end marker (a JPEG's EOI after its last scan,
/// a PNG's IEND chunk). Decoders fill a cut-off picture with grey and report nothing.
fn cut_short(bytes: &[u8], format: ImageFormat) -> Option<&'static str> {
    let rfind = |pat: &[u8]| bytes.windows(pat.len()).rposition(|w| w == pat);
    match format {
        ImageFormat::Jpeg => {
            let sos = rfind(&[0xff, 0xda]).unwrap_or(0);
            match rfind(&[0xff, 0xd9]) {
                Some(eoi) if eoi > sos => None,
                _ => Some("end-of-image marker"),
            }
        }
        ImageFormat::Png => rfind(b"IEND").is_none().then_some("IEND chunk"),
        _ => None,
    }
}

/// A picture made ready for the model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Picture {
    /// "PNG" or "JPEG".
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    /// The picture's colour type as stored, e.g. "8-bit RGBA".
    pub colour: String,
    /// What was done to the picture, in order, worded for the report.
    pub steps: Vec<String>,
    /// Whether the grey values were inverted because the picture's border was mostly light.
    pub inverted: bool,
    /// The share of light pixels on the picture's border (what decides `inverted`).
    pub border_light: f64,
    /// The 28x28 input, row by row, 0..=255 (divided by 255 before the model sees it).
    #[serde(skip)]
    pub pixels: Vec<u8>,
}

impl Picture {
    /// The input row the engine runs: pixels / 255 as float32, exactly as `Dataset::images_f32`.
    pub fn input_row(&self) -> Vec<f32> {
        self.pixels.iter().map(|&p| p as f32 / 255.0).collect()
    }
}

/// Reads and prepares the picture at `path`.
pub fn load(path: &Path) -> Result<Picture> {
    if path.is_dir() {
        return Err(err!("{} is a directory, not a picture", path.display())
            .with_hint("pass a PNG or JPEG file; the model directory goes to --model"));
    }
    let bytes = crate::fsguard::read(path, crate::fsguard::budget::PICTURE)?;
    from_bytes(path, &bytes)
}

/// Like [`load`], from bytes already in memory; `path` is used in messages only.
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Picture> {
    let shown = path.display();
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => f,
        Ok(other) => {
            return Err(err!(
                "{shown} is a {} picture; fmtool reads PNG and JPEG",
                format!("{other:?}").to_uppercase()
            )
            .with_hint("open it in an image viewer and save it as PNG"));
        }
        Err(_) => return Err(not_a_picture(path, bytes)),
    };
    let name = if format == ImageFormat::Png { "PNG" } else { "JPEG" };
    let decode_err = |e: image::ImageError| {
        err!("cannot decode {shown} as a {name} picture: {e}").with_hint(format!(
            "the file is damaged or cut short; open it in an image viewer and save it again as {name}"
        ))
    };
    if let Some(missing) = cut_short(bytes, format) {
        return Err(err!("{shown} is cut short: its {missing} is missing, so part of the picture is not there")
            .with_hint(format!("copy the file again, or open it in an image viewer and save it again as {name}")));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(512 << 20);
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    // The header's size, checked before a pixel is decoded.
    let (w, h) = decoder.dimensions();
    if w > MAX_SIDE || h > MAX_SIDE || w as u64 * h as u64 > MAX_PIXELS {
        return Err(err!(
            "{shown} is {w}x{h} pixels, larger than fmtool reads (at most {MAX_SIDE} on a side and {} megapixels); the model sees 28x28",
            MAX_PIXELS / 1_000_000
        )
        .with_hint("scale the picture down in an image viewer and save it again"));
    }
    // The decoder's own limits stay as a second line behind the check above.
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    decoder.set_limits(limits).map_err(decode_err)?;
    // A broken EXIF block only loses the rotation; the picture itself is still good.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let colour = describe_colour(decoder.color_type());
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    let mut steps = Vec::new();
    if orientation != Orientation::NoTransforms {
        img.apply_orientation(orientation);
        steps.push("turned upright as its EXIF orientation says".to_string());
    }
    let (width, height) = (img.width(), img.height());
    if width == 0 || height == 0 {
        return Err(err!("{shown} has no pixels ({width}x{height})"));
    }
    let has_colour = img.color().has_color();
    let rgba = img.to_rgba8();
    let mut see_through = 0usize;
    let grey: Vec<f32> = rgba
        .pixels()
        .map(|p| {
            let [r, g, b, a] = p.0;
            let v = if has_colour { 0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32 } else { r as f32 };
            if a < 255 {
                see_through += 1;
                v * a as f32 / 255.0
            } else {
                v
            }
        })
        .collect();
    if has_colour {
        steps.push("made grey with the ITU-R 601 luma weights (0.299 R + 0.587 G + 0.114 B)".to_string());
    }
    if see_through > 0 {
        steps.push(format!("composited {see_through} transparent or translucent pixels onto black"));
    }
    let prepared = prepare(&grey, width as usize, height as usize);
    steps.extend(prepared.steps);
    Ok(Picture {
        format: name,
        width,
        height,
        colour,
        steps,
        inverted: prepared.inverted,
        border_light: prepared.border_light,
        pixels: prepared.pixels,
    })
}

/// The result of [`prepare`].
#[derive(Debug, Clone)]
pub struct Prepared {
    pub pixels: Vec<u8>,
    pub inverted: bool,
    pub border_light: f64,
    pub steps: Vec<String>,
}

/// Makes grey values (0..=255, row by row, `w` x `h`) into a 28x28 Fashion-MNIST input: inverted
/// when the border is mostly light, padded with black to a square (keeping the aspect ratio), then
/// scaled to 28x28 (area averaging down, bilinear up) and rounded to whole grey levels like the
/// dataset's bytes. A 28x28 picture that needs no inversion comes out unchanged.
pub fn prepare(grey: &[f32], w: usize, h: usize) -> Prepared {
    assert_eq!(grey.len(), w * h, "prepare: {w}x{h} needs {} values", w * h);
    let mut steps = Vec::new();
    let border_light = border_light_share(grey, w, h);
    // Fashion-MNIST items are light on black; a dark item photographed on white paper would look
    // to the model like a hole in a light garment.
    let inverted = border_light > 0.5;
    let mut grey = grey.to_vec();
    if inverted {
        for v in &mut grey {
            *v = 255.0 - *v;
        }
        steps.push(format!(
            "INVERTED: {:.0}% of its border is light, so it was taken for a dark item on a light \
             background (Fashion-MNIST items are light on black)",
            border_light * 100.0
        ));
    }
    let side = w.max(h);
    let (ox, oy) = ((side - w) / 2, (side - h) / 2);
    if w != h {
        steps.push(format!("padded to {side}x{side} with black to keep its aspect ratio"));
    }
    if side > SIDE {
        steps.push(format!("scaled down from {side}x{side} to {SIDE}x{SIDE} by area averaging"));
    } else if side < SIDE {
        steps.push(format!("scaled up from {side}x{side} to {SIDE}x{SIDE} bilinearly"));
    }
    let weights = if side >= SIDE { area_weights(side, SIDE) } else { bilinear_weights(side, SIDE) };
    // Horizontal pass over the real rows, then vertical; the padding is the virtual pixels outside
    // [ox, ox + w) x [oy, oy + h), which are black and contribute nothing.
    let mut rows = vec![0f32; h * SIDE];
    for y in 0..h {
        for (o, ws) in weights.iter().enumerate() {
            rows[y * SIDE + o] =
                ws.iter().filter(|(vx, _)| (ox..ox + w).contains(vx)).map(|&(vx, wt)| wt * grey[y * w + vx - ox]).sum();
        }
    }
    let mut pixels = vec![0u8; SIDE * SIDE];
    for (o2, ws) in weights.iter().enumerate() {
        for o in 0..SIDE {
            let v: f32 = ws
                .iter()
                .filter(|(vy, _)| (oy..oy + h).contains(vy))
                .map(|&(vy, wt)| wt * rows[(vy - oy) * SIDE + o])
                .sum();
            pixels[o2 * SIDE + o] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    Prepared { pixels, inverted, border_light, steps }
}

/// The share of light pixels in the picture's outer ring, 1/28 of the shorter side wide (one pixel
/// for a 28x28 picture), which is where the background shows.
pub fn border_light_share(grey: &[f32], w: usize, h: usize) -> f64 {
    let ring = (w.min(h) / SIDE).max(1);
    let (mut light, mut total) = (0usize, 0usize);
    for y in 0..h {
        for x in 0..w {
            if x < ring || y < ring || x + ring >= w || y + ring >= h {
                total += 1;
                light += usize::from(grey[y * w + x] > LIGHT);
            }
        }
    }
    light as f64 / total.max(1) as f64
}

/// For each output pixel, the source pixels and weights of an area average (`src >= dst`): the
/// output pixel covers `src / dst` source pixels, partly covered ones weighing by the part covered.
fn area_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|o| {
            let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
            (lo.floor() as usize..(hi.ceil() as usize).min(src))
                .filter_map(|i| {
                    let cover = hi.min(i as f64 + 1.0) - lo.max(i as f64);
                    (cover > 1e-12).then(|| (i, (cover / scale) as f32))
                })
                .collect()
        })
        .collect()
}

/// Bilinear weights for enlarging (`src < dst`), pixel centres aligned as PIL and OpenCV do.
fn bilinear_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|o| {
            let c = ((o as f64 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f64);
            let i0 = c.floor() as usize;
            let i1 = (i0 + 1).min(src - 1);
            let t = (c - i0 as f64) as f32;
            if i1 == i0 || t == 0.0 { vec![(i0, 1.0)] } else { vec![(i0, 1.0 - t), (i1, t)] }
        })
        .collect()
}

fn describe_colour(c: image::ColorType) -> String {
    use image::ColorType::*;
    let (bits, kind) = match c {
        L8 => (8, "grey"),
        La8 => (8, "grey + alpha"),
        Rgb8 => (8, "RGB"),
        Rgba8 => (8, "RGBA"),
        L16 => (16, "grey"),
        La16 => (16, "grey + alpha"),
        Rgb16 => (16, "RGB"),
        Rgba16 => (16, "RGBA"),
        Rgb32F => (32, "float RGB"),
        Rgba32F => (32, "float RGBA"),
        other => return format!("{other:?}"),
    };
    format!("{bits}-bit {kind}")
}

/// The error for a file that is no picture at all, guessing what it is from its first bytes.
fn not_a_picture(path: &Path, bytes: &[u8]) -> Error {
    let shown = path.display();
    let what = if bytes.is_empty() {
        "is empty"
    } else if bytes.starts_with(b"\x93NUMPY") {
        "is a NumPy .npy array, not a picture"
    } else if bytes.starts_with(b"PK") {
        "is a zip archive (an .npz or .keras file?), not a picture"
    } else if bytes.starts_with(b"\x89HDF") {
        "is an HDF5 file (a Keras .h5 model?), not a picture"
    } else if bytes.iter().take(64).find(|b| !b.is_ascii_whitespace()).is_some_and(|&b| b == b'{' || b == b'[') {
        "is JSON, not a picture"
    } else {
        "is not a PNG or JPEG picture"
    };
    err!("{shown} {what}").with_hint(
        "pass a PNG or JPEG picture to classify, or --out FILE.npy to write the outputs for every test image",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_png(w: u32, h: u32, colour: png::ColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(colour);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(data).unwrap();
        out
    }

    fn test_image(i: usize) -> Vec<u8> {
        let d = crate::dataset::embedded_test_set();
        d.pixels[i * 784..(i + 1) * 784].to_vec()
    }

    #[test]
    fn grey_28x28_passes_unchanged() {
        let img = test_image(0);
        let p = from_bytes(Path::new("t.png"), &encode_png(28, 28, png::ColorType::Grayscale, &img)).unwrap();
        assert_eq!(p.pixels, img);
        assert!(!p.inverted);
        assert!(p.steps.is_empty(), "{:?}", p.steps);
        assert_eq!((p.format, p.width, p.height, p.colour.as_str()), ("PNG", 28, 28, "8-bit grey"));
    }

    #[test]
    fn grey_rgb_and_doubled_size_give_the_same_input() {
        let img = test_image(7);
        let rgb: Vec<u8> = img.iter().flat_map(|&v| [v, v, v]).collect();
        let p = from_bytes(Path::new("t.png"), &encode_png(28, 28, png::ColorType::Rgb, &rgb)).unwrap();
        assert_eq!(p.pixels, img);
        assert!(p.steps[0].contains("ITU-R 601"));
        // Every pixel as a 2x2 block: area averaging gives each block back.
        let big: Vec<u8> =
            (0..56).flat_map(|y| (0..56).map(move |x| (y, x))).map(|(y, x)| img[y / 2 * 28 + x / 2]).collect();
        let p = from_bytes(Path::new("t.png"), &encode_png(56, 56, png::ColorType::Grayscale, &big)).unwrap();
        assert_eq!(p.pixels, img);
        assert_eq!(p.steps, ["scaled down from 56x56 to 28x28 by area averaging"]);
    }

    #[test]
    fn luma_weights_and_alpha() {
        // Opaque pure red, green, blue, and half-transparent white.
        let px = [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 128];
        let grey: Vec<f32> = px
            .chunks(4)
            .map(|c| (0.299 * c[0] as f32 + 0.587 * c[1] as f32 + 0.114 * c[2] as f32) * c[3] as f32 / 255.0)
            .collect();
        assert_eq!(grey.iter().map(|v| v.round() as u8).collect::<Vec<_>>(), [76, 150, 29, 128]);
        let p = from_bytes(Path::new("t.png"), &encode_png(4, 1, png::ColorType::Rgba, &px)).unwrap();
        assert!(p.steps.iter().any(|s| s.contains("composited 1 transparent")), "{:?}", p.steps);
        // A 4x1 strip is padded to 4x4 and scaled up; the result is not inverted (border mostly black).
        assert!(!p.inverted);
        assert!(p.pixels.iter().any(|&v| v > 0));
    }

    #[test]
    fn white_background_is_inverted() {
        let img = test_image(3);
        let neg: Vec<u8> = img.iter().map(|&v| 255 - v).collect();
        let p = from_bytes(Path::new("t.png"), &encode_png(28, 28, png::ColorType::Grayscale, &neg)).unwrap();
        assert!(p.inverted);
        assert!(p.border_light > 0.9);
        assert!(p.steps[0].starts_with("INVERTED"));
        assert_eq!(p.pixels, img);
    }

    #[test]
    fn padding_keeps_the_aspect_ratio() {
        // A 28 wide, 14 high light bar with a black frame: 7 black rows come above and below.
        let bar: Vec<f32> = (0..14)
            .flat_map(|y| (0..28).map(move |x| if (1..27).contains(&x) && (1..13).contains(&y) { 200.0 } else { 0.0 }))
            .collect();
        let p = prepare(&bar, 28, 14);
        assert!(!p.inverted);
        for y in 0..28 {
            for x in 0..28 {
                let expect = if (8..20).contains(&y) && (1..27).contains(&x) { 200 } else { 0 };
                assert_eq!(p.pixels[y * 28 + x], expect, "({x}, {y})");
            }
        }
        assert_eq!(p.steps, ["padded to 28x28 with black to keep its aspect ratio"]);
    }

    #[test]
    fn odd_sizes_average_correctly() {
        // 42 -> 28: each output covers 1.5 source pixels; a constant stays constant.
        let p = prepare(&vec![100.0; 42 * 42], 42, 42);
        assert!(p.pixels.iter().all(|&v| v == 100));
        // Enlarging a constant stays constant too.
        let p = prepare(&[60.0; 5 * 5], 5, 5);
        assert!(p.pixels.iter().all(|&v| v == 60));
        for ws in area_weights(1000, 28).iter().chain(&bilinear_weights(9, 28)) {
            let s: f32 = ws.iter().map(|w| w.1).sum();
            assert!((s - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn the_test_set_is_never_inverted() {
        // The rule must leave real Fashion-MNIST images alone.
        let d = crate::dataset::embedded_test_set();
        let inverted = (0..d.len())
            .filter(|&i| {
                let g: Vec<f32> = d.pixels[i * 784..(i + 1) * 784].iter().map(|&v| v as f32).collect();
                border_light_share(&g, 28, 28) > 0.5
            })
            .count();
        assert_eq!(inverted, 0);
    }

    #[test]
    fn bad_files_are_named() {
        let e = from_bytes(Path::new("x.png"), b"").unwrap_err();
        assert_eq!(e.message, "x.png is empty");
        let e = from_bytes(Path::new("x.png"), b"\x93NUMPY\x01\x00").unwrap_err();
        assert!(e.message.contains("x.png is a NumPy .npy array"));
        let e = from_bytes(Path::new("x.png"), b"GIF89a\x01\x00\x01\x00").unwrap_err();
        assert!(e.message.contains("x.png is a GIF picture"), "{}", e.message);
        let good = encode_png(28, 28, png::ColorType::Grayscale, &[0; 784]);
        let e = from_bytes(Path::new("cut.png"), &good[..good.len() / 2]).unwrap_err();
        assert!(e.message.starts_with("cut.png is cut short: its IEND chunk is missing"), "{}", e.message);
    }
}

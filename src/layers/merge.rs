//! Merge layers of functional models: Add, Subtract, Multiply, Average, Maximum, Minimum and
//! Concatenate. Their inputs come from the `inbound` key of the course entries.

use super::core::expect_weights;
use super::{BuildCtx, Built, Op, Tensor, fmt_shape};
use crate::err;
use crate::error::Result;
use ndarray::Axis;

#[derive(Clone, Copy)]
enum Kind {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
}

struct Elementwise(Kind);

impl Op for Elementwise {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let mut y = inputs[0].to_owned();
        for x in &inputs[1..] {
            match self.0 {
                Kind::Add | Kind::Average => y += *x,
                Kind::Subtract => y -= *x,
                Kind::Multiply => y *= *x,
                Kind::Maximum => y.zip_mut_with(x, |a, b| *a = a.max(*b)),
                Kind::Minimum => y.zip_mut_with(x, |a, b| *a = a.min(*b)),
            }
        }
        if let Kind::Average = self.0 {
            let n = inputs.len() as f32;
            y.mapv_inplace(|v| v / n);
        }
        Ok(y)
    }
}

fn build_elementwise(ctx: &BuildCtx, kind: Kind) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    let shapes = ctx.input_shapes;
    let min = if matches!(kind, Kind::Subtract) { 2 } else { 1 };
    if shapes.len() < min || (matches!(kind, Kind::Subtract) && shapes.len() != 2) {
        return Err(err!(
            "layer {} ({}) needs {} inputs, but is connected to {}",
            ctx.layer.name,
            ctx.layer.class_name,
            if matches!(kind, Kind::Subtract) { "exactly 2" } else { "at least 2" },
            shapes.len()
        ));
    }
    if shapes.iter().any(|s| s != &shapes[0]) {
        let all: Vec<String> = shapes.iter().map(|s| fmt_shape(s)).collect();
        return Err(err!(
            "layer {} ({}): inputs have different shapes {}",
            ctx.layer.name,
            ctx.layer.class_name,
            all.join(", ")
        ));
    }
    Ok(Built { output_shape: shapes[0].clone(), op: Box::new(Elementwise(kind)) })
}

pub fn build_add(ctx: &BuildCtx) -> Result<Built> {
    build_elementwise(ctx, Kind::Add)
}
pub fn build_subtract(ctx: &BuildCtx) -> Result<Built> {
    build_elementwise(ctx, Kind::Subtract)
}
pub fn build_multiply(ctx: &BuildCtx) -> Result<Built> {
    build_elementwise(ctx, Kind::Multiply)
}
pub fn build_average(ctx: &BuildCtx) -> Result<Built> {
    build_elementwise(ctx, Kind::Average)
}
pub fn build_maximum(ctx: &BuildCtx) -> Result<Built> {
    build_elementwise(ctx, Kind::Maximum)
}
pub fn build_minimum(ctx: &BuildCtx) -> Result<Built> {
    build_elementwise(ctx, Kind::Minimum)
}

struct Concat(usize);

impl Op for Concat {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let views: Vec<_> = inputs.iter().map(|x| x.view()).collect();
        ndarray::concatenate(Axis(self.0), &views).map_err(|e| err!("Concatenate: {e}"))
    }
}

pub fn build_concatenate(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    let shapes = ctx.input_shapes;
    if shapes.is_empty() {
        return Err(err!("layer {}: Concatenate has no inputs", ctx.layer.name));
    }
    let rank = shapes[0].len();
    let raw = ctx.layer.get("axis").and_then(|v| v.as_i64()).unwrap_or(-1);
    let full = rank as i64 + 1;
    let axis = if raw < 0 { full + raw } else { raw };
    if axis <= 0 || axis >= full {
        return Err(err!("layer {}: axis {raw} does not exist for inputs of rank {rank}", ctx.layer.name));
    }
    let a = axis as usize - 1;
    let mut out = shapes[0].clone();
    for s in &shapes[1..] {
        let fits = s.len() == rank && s.iter().enumerate().all(|(i, d)| i == a || *d == shapes[0][i]);
        if !fits {
            let all: Vec<String> = shapes.iter().map(|s| fmt_shape(s)).collect();
            return Err(err!("layer {}: cannot concatenate {} on axis {raw}", ctx.layer.name, all.join(", ")));
        }
        out[a] += s[a];
    }
    Ok(Built { output_shape: out, op: Box::new(Concat(axis as usize)) })
}

//! The forward pass: builds a graph of layers from course-format entries and weights, works out
//! the input shape, and runs batches of flat 784-value rows through it on all cores. No I/O.

use crate::err;
use crate::error::{Error, Result};
use crate::layers::{self, BuildCtx, Built, Op, Shape, Tensor, Weight, fmt_shape};
use crate::model::{ArchEntry, Npz};
use ndarray::{Array2, ArrayView2, Axis, IxDyn};
use rayon::prelude::*;

/// The number of values the grader feeds per image.
pub const IMAGE_VALUES: usize = 784;

/// Images per work item. Large enough to amortize per-layer overhead, small enough that a
/// convolution's im2col buffer stays in cache-friendly sizes and both cores stay busy.
pub const CHUNK: usize = 64;

/// Where a node's input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ModelInput,
    Node(usize),
}

/// How entries are wired to their inputs, for the engine and for `check`'s shape flow alike: in
/// a functional export (any entry has `inbound`) each entry takes the earlier layers it names
/// (or the model's input when it names none); otherwise each takes the one before it. Names are
/// hashed, so a 20,000-layer functional model wires in linear time, and the first layer of a name
/// wins. A layer can be named once it is built ([`Wiring::built`]).
pub struct Wiring<'a> {
    functional: bool,
    by_name: std::collections::HashMap<&'a str, usize>,
}

/// Entry `i`'s `k`-th inbound name is not an earlier layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownInbound<'a> {
    pub k: usize,
    pub name: &'a str,
}

impl<'a> Wiring<'a> {
    pub fn new(arch: &[ArchEntry]) -> Wiring<'a> {
        Wiring { functional: arch.iter().any(|e| e.inbound.is_some()), by_name: Default::default() }
    }

    /// Where entry `i` (`e`) takes its inputs from.
    pub fn inputs(&self, i: usize, e: &'a ArchEntry) -> std::result::Result<Vec<Source>, UnknownInbound<'a>> {
        if !self.functional {
            return Ok(vec![if i == 0 { Source::ModelInput } else { Source::Node(i - 1) }]);
        }
        match &e.inbound {
            Some(names) if !names.is_empty() => names
                .iter()
                .enumerate()
                .map(|(k, n)| {
                    self.by_name.get(n.as_str()).copied().map(Source::Node).ok_or(UnknownInbound { k, name: n })
                })
                .collect(),
            _ => Ok(vec![Source::ModelInput]),
        }
    }

    /// Entry `i` (`e`) is built: later entries may name it.
    pub fn built(&mut self, i: usize, e: &'a ArchEntry) {
        self.by_name.entry(e.name.as_str()).or_insert(i);
    }
}

/// One layer in the graph.
pub struct Node {
    pub name: String,
    pub class_name: String,
    pub inputs: Vec<Source>,
    pub op: Box<dyn Op>,
    pub output_shape: Shape,
    pub params: usize,
    /// For a layer that returns its input unchanged: where that input comes from, followed
    /// through chains of such layers. The forward pass reads it there and never runs the node.
    pub alias: Option<Source>,
}

/// How the model's input shape was found, for the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InputShape {
    pub shape: Shape,
    /// Where it came from: `"InputLayer input_layer"`, `"batch_input_shape of dense"`, or
    /// `"inferred from conv2d's kernel"`.
    pub source: String,
    /// True when the files carried no input shape and fmtool inferred it.
    pub inferred: bool,
}

/// A runnable model.
pub struct Model {
    pub nodes: Vec<Node>,
    pub input: InputShape,
    /// What one image costs, counted over the layers as built (before any fusion), as `check`
    /// counts it.
    pub cost: crate::cost::Cost,
    /// The longest a pass over many images may take, checked before each chunk (`None`: no
    /// limit). A model within the budget can still take minutes on a slow machine.
    pub time_limit: Option<std::time::Duration>,
}

/// One built layer as the cost sees it (`check`'s shape flow makes the same).
pub fn layer_cost(e: &ArchEntry, op: &dyn Op, output_shape: &[usize], inputs: &[Source]) -> crate::cost::LayerCost {
    crate::cost::LayerCost {
        name: e.name.clone(),
        class_name: e.class_name.clone(),
        flops: op.flops_per_sample(),
        output_values: layers::shape_values(output_shape).unwrap_or(usize::MAX) as u64,
        inputs: inputs
            .iter()
            .map(|s| match s {
                Source::ModelInput => None,
                Source::Node(j) => Some(*j),
            })
            .collect(),
        identity: op.is_identity() && inputs.len() == 1,
    }
}

impl Model {
    /// Builds the graph from architecture entries and an npz, checking every weight's presence and
    /// shape. Errors name the layer, the JSON pointer and the npz key. Weight names listed on a
    /// layer that has no weights (a Flatten, a Dropout) are ignored, as the course template ignores
    /// them.
    pub fn build(arch: &[ArchEntry], npz: &Npz) -> Result<Model> {
        let mut weights = Vec::with_capacity(arch.len());
        let keys = crate::model::NpzIndex::new(npz);
        for e in arch {
            let mut ws = Vec::with_capacity(e.weights.len());
            if !layers::takes_weights(&e.class_name) {
                weights.push(ws);
                continue;
            }
            for (j, key) in e.weights.iter().enumerate() {
                let a = keys.array(key).map_err(|err| {
                    let msg = format!("{}.weights[{j}] of layer {}: {}", e.pointer(), e.name, err.message);
                    Error { message: msg, hint: err.hint }
                })?;
                ws.push(Weight { key: key.clone(), array: a.to_f32() });
            }
            weights.push(ws);
        }
        Model::build_with_weights(arch, weights)
    }

    /// Like [`Model::build`] with the weights already looked up, in entry order.
    pub fn build_with_weights(arch: &[ArchEntry], weights: Vec<Vec<Weight>>) -> Result<Model> {
        Model::build_graph(arch, weights, true)
    }

    /// Builds the graph; with `fuse`, lets layers take on the element-wise layers after them
    /// ([`fuse_posts`]); the tests compare both.
    fn build_graph(arch: &[ArchEntry], mut weights: Vec<Vec<Weight>>, fuse: bool) -> Result<Model> {
        if arch.is_empty() {
            return Err(err!("the model has no layers"));
        }
        let input = input_shape(arch, &weights)?;
        layers::check_shape(&format!("the model's input ({})", crate::text::clip(&input.source, 100)), &input.shape)?;
        let mut nodes: Vec<Node> = Vec::with_capacity(arch.len());
        let mut costs = Vec::with_capacity(arch.len());
        let mut wiring = Wiring::new(arch);
        for (i, e) in arch.iter().enumerate() {
            let inputs = wiring.inputs(i, e).map_err(|bad| {
                err!(
                    "{} (layer {}): inbound layer \"{}\" is not an earlier layer of the model",
                    e.pointer(),
                    crate::text::clip(&e.name, 100),
                    crate::text::clip(bad.name, 100)
                )
            })?;
            let input_shapes: Vec<Shape> = inputs
                .iter()
                .map(|s| match s {
                    Source::ModelInput => input.shape.clone(),
                    Source::Node(j) => nodes[*j].output_shape.clone(),
                })
                .collect();
            let mut ws = std::mem::take(&mut weights[i]);
            if !layers::takes_weights(&e.class_name) {
                ws.clear();
            }
            let params = ws.iter().map(|w| w.array.len()).sum();
            let ctx = BuildCtx { layer: e.layer(), weights: ws, input_shapes: &input_shapes };
            let Built { op, output_shape } = layers::build(&ctx).map_err(|err| {
                let shapes: Vec<String> = input_shapes.iter().map(|s| fmt_shape(s)).collect();
                let name = crate::text::clip(&e.name, 100);
                let where_ = format!(
                    "{} (layer {name}, type {}, input {})",
                    e.pointer(),
                    crate::text::clip(&e.class_name, 100),
                    shapes.join(" + ")
                );
                if err.message.contains(&name) { err.context(e.pointer()) } else { err.context(where_) }
            })?;
            let alias = match inputs.as_slice() {
                [Source::Node(j)] if op.is_identity() => Some(nodes[*j].alias.unwrap_or(Source::Node(*j))),
                [Source::ModelInput] if op.is_identity() => Some(Source::ModelInput),
                _ => None,
            };
            wiring.built(nodes.len(), e);
            costs.push(layer_cost(e, op.as_ref(), &output_shape, &inputs));
            nodes.push(Node {
                name: e.name.clone(),
                class_name: e.class_name.clone(),
                inputs,
                op,
                output_shape,
                params,
                alias,
            });
        }
        let cost = crate::cost::cost(&costs, layers::shape_values(&input.shape).unwrap_or(usize::MAX) as u64);
        if fuse {
            fuse_posts(&mut nodes);
        }
        Ok(Model { nodes, input, cost, time_limit: None })
    }

    /// The per-sample output shape (of the last layer).
    pub fn output_shape(&self) -> &Shape {
        &self.nodes.last().expect("a model has at least one layer").output_shape
    }

    /// The model within `budget`, or an error naming the layer and the figures.
    pub fn within(&self, budget: &crate::cost::Budget) -> Result<()> {
        match self.cost.over(budget) {
            None => Ok(()),
            Some(why) => Err(err!("the model is {}: {why}", crate::cost::TOO_EXPENSIVE).with_hint(crate::cost::HINT)),
        }
    }

    pub fn params(&self) -> usize {
        self.nodes.iter().map(|n| n.params).sum()
    }

    /// Runs one batch whose rows are flat images; the batch is reshaped to the input shape.
    pub fn forward(&self, rows: ArrayView2<f32>) -> Result<Tensor> {
        self.forward_rows(rows.as_standard_layout().into_owned())
    }

    /// [`Model::forward`] on rows the engine may keep.
    fn forward_rows(&self, rows: Array2<f32>) -> Result<Tensor> {
        let (n, cols) = rows.dim();
        let mut shape = vec![n];
        shape.extend(&self.input.shape);
        // The model's input, until a layer that is its only reader takes it.
        let mut x = Some(rows.into_shape_with_order(IxDyn(&shape)).map_err(|_| self.input_mismatch(cols))?);
        // Identity layers are not run: their consumers read the aliased source directly.
        let resolve = |s: &Source| match s {
            Source::Node(j) => self.nodes[*j].alias.unwrap_or(*s),
            Source::ModelInput => *s,
        };
        let last = self.nodes.len() - 1;
        let result = resolve(&Source::Node(last));
        // Each node's output is dropped as soon as its last consumer has run.
        let mut remaining: Vec<usize> = vec![0; self.nodes.len()];
        let mut input_readers = 0;
        for node in self.nodes.iter().filter(|n| n.alias.is_none()) {
            for s in &node.inputs {
                match resolve(s) {
                    Source::Node(j) => remaining[j] += 1,
                    Source::ModelInput => input_readers += 1,
                }
            }
        }
        let mut outputs: Vec<Option<Tensor>> = (0..self.nodes.len()).map(|_| None).collect();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.alias.is_some() {
                continue;
            }
            // A one-input layer that is its input's last reader may overwrite it (Op::forward_owned).
            let sole = match node.inputs.as_slice() {
                [s] => match resolve(s) {
                    src @ Source::Node(j) if remaining[j] == 1 && src != result => Some(src),
                    src @ Source::ModelInput if input_readers == 1 && src != result => Some(src),
                    _ => None,
                },
                _ => None,
            };
            let y = if let Some(src) = sole {
                let input = match src {
                    Source::Node(j) => outputs[j].take(),
                    Source::ModelInput => x.take(),
                }
                .expect("inputs run before their consumers");
                node.op
                    .forward_owned(input)
                    .map_err(|e| e.context(format!("layer {}", crate::text::clip(&node.name, 100))))?
            } else {
                let ins: Vec<&Tensor> = node
                    .inputs
                    .iter()
                    .map(|s| match resolve(s) {
                        Source::ModelInput => x.as_ref().expect("the model's input is taken by its only reader"),
                        Source::Node(j) => outputs[j].as_ref().expect("inputs run before their consumers"),
                    })
                    .collect();
                node.op.forward(&ins).map_err(|e| e.context(format!("layer {}", crate::text::clip(&node.name, 100))))?
            };
            for s in &node.inputs {
                if let Source::Node(j) = resolve(s) {
                    remaining[j] -= 1;
                    if remaining[j] == 0 && Source::Node(j) != result {
                        outputs[j] = None;
                    }
                }
            }
            outputs[i] = Some(y);
        }
        match result {
            Source::ModelInput => Ok(x.expect("the model's input is its output: nothing took it")),
            Source::Node(j) => Ok(outputs[j].take().expect("the last node ran")),
        }
    }

    fn input_mismatch(&self, got: usize) -> Error {
        err!(
            "the model's input shape {} ({}) does not hold the {got} values of one image",
            fmt_shape(&self.input.shape),
            self.input.source
        )
        .with_hint("the grader feeds rows of 784 values; give the model an input of (784,), (28, 28) or (28, 28, 1)")
    }

    /// Runs all images (rows of 784 values) in parallel chunks and returns the model's outputs,
    /// one row per image. `progress` is called with the number of images finished so far.
    pub fn predict(&self, images: ArrayView2<f32>, progress: &(dyn Fn(usize) + Sync)) -> Result<Array2<f32>> {
        self.predict_rows(images, &|chunk| self.forward(chunk), progress)
    }

    /// [`Model::predict`] on raw pixels (0 to 255): each chunk is divided by 255 as float32 when
    /// its turn comes, the same values as [`crate::dataset::Dataset::images_f32`] without a
    /// float32 copy of the whole data set (31 MB for the test set: its page faults alone cost a
    /// small model's `fmtool score` more than its forward pass).
    pub fn predict_pixels(&self, pixels: ArrayView2<u8>, progress: &(dyn Fn(usize) + Sync)) -> Result<Array2<f32>> {
        self.predict_rows(pixels, &|chunk| self.forward_rows(scaled(chunk)), progress)
    }

    fn predict_rows<T: Sync>(
        &self,
        images: ArrayView2<T>,
        forward: &(dyn Fn(ArrayView2<T>) -> Result<Tensor> + Sync),
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Array2<f32>> {
        let per_image: usize = self.input.shape.iter().product();
        if per_image != images.ncols() {
            return Err(self.input_mismatch(images.ncols()));
        }
        let out_len: usize = self.output_shape().iter().product();
        let done = std::sync::atomic::AtomicUsize::new(0);
        // Fewer images per chunk when the outputs alive at once are large, so that one chunk's
        // stay under 256 MB (64 M values) even for a model at the budget's limit.
        let live = usize::try_from(self.cost.live_bytes / 4).unwrap_or(usize::MAX).max(1);
        let chunk = CHUNK.min((1usize << 26) / live).max(1);
        let chunks: Vec<ArrayView2<T>> = images.axis_chunks_iter(Axis(0), chunk).collect();
        let deadline = self.time_limit.map(|l| (std::time::Instant::now() + l, l));
        let results: Vec<Result<Tensor>> = chunks
            .par_iter()
            .map(|chunk| {
                if let Some((at, limit)) = deadline
                    && std::time::Instant::now() > at
                {
                    return Err(err!(
                        "the model's pass over the images took longer than fmtool's limit of {:.0} s; it stopped after {} images",
                        limit.as_secs_f64(),
                        done.load(std::sync::atomic::Ordering::Relaxed)
                    )
                    .with_hint("a model of this assignment takes seconds: make it smaller, or pass --no-budget to let it run"));
                }
                let y = forward(chunk.view())?;
                let n = done.fetch_add(chunk.nrows(), std::sync::atomic::Ordering::Relaxed) + chunk.nrows();
                progress(n);
                Ok(y)
            })
            .collect();
        let mut out = Array2::<f32>::zeros((images.nrows(), out_len));
        let mut row = 0;
        for r in results {
            let y = r?;
            let n = y.shape()[0];
            let flat = y.into_shape_with_order((n, out_len)).map_err(|e| err!("output: {e}"))?;
            out.slice_mut(ndarray::s![row..row + n, ..]).assign(&flat);
            row += n;
        }
        Ok(out)
    }
}

/// Starts the engine's worker threads without waiting for them, so that they come up while the
/// model and the data are read: the first parallel pass otherwise waits for them (0.4 to 0.7 ms,
/// measured, about 5% of a small MLP's pass). Call it after anything that must happen before
/// threads exist (signal handlers).
pub fn start_workers() {
    rayon::spawn(|| {});
}

/// Pixels (0 to 255) as float32 divided by 255, the grader's scaling.
fn scaled(pixels: ArrayView2<u8>) -> Array2<f32> {
    let src = pixels.as_standard_layout();
    let values = layers::fast::pixels(src.as_slice().expect("standard layout"));
    Array2::from_shape_vec(pixels.dim(), values).expect("one value per pixel")
}

/// Lets a Conv2D or Dense apply the element-wise layers after it (BatchNormalization, ReLU) as
/// it writes its output, when nothing else reads what it feeds them: each such layer then becomes
/// an alias of the layer before it and is not run. The same float32 operations run in the same
/// order (see [`layers::Post`]), so the outputs are the same bits.
fn fuse_posts(nodes: &mut [Node]) {
    let resolve = |nodes: &[Node], s: Source| match s {
        Source::Node(j) => nodes[j].alias.unwrap_or(s),
        Source::ModelInput => s,
    };
    let mut readers = vec![0usize; nodes.len()];
    for node in nodes.iter().filter(|n| n.alias.is_none()) {
        for s in &node.inputs {
            if let Source::Node(j) = resolve(nodes, *s) {
                readers[j] += 1;
            }
        }
    }
    for j in 0..nodes.len() {
        let (Some(post), None, [input]) = (nodes[j].op.as_post(), nodes[j].alias, nodes[j].inputs.as_slice()) else {
            continue;
        };
        let Source::Node(i) = resolve(nodes, *input) else { continue };
        if readers[i] != 1 || nodes[i].output_shape != nodes[j].output_shape {
            continue;
        }
        if nodes[i].op.absorb(&post) {
            nodes[j].alias = Some(Source::Node(i));
            // Whatever read layer j now reads layer i, identity layers after it included (their
            // alias names j).
            readers[i] = readers[j];
            for later in &mut nodes[j + 1..] {
                if later.alias == Some(Source::Node(j)) {
                    later.alias = Some(Source::Node(i));
                }
            }
        }
    }
}

/// Finds the model's per-sample input shape: declared by an InputLayer or by the first layer's
/// config, or inferred from the first layer's weights when the export carries none (Keras 3's
/// `model.layers` drops the InputLayer of a Sequential model).
pub fn input_shape(arch: &[ArchEntry], weights: &[Vec<Weight>]) -> Result<InputShape> {
    if let Some(found) = declared_input_shape(arch) {
        return Ok(found);
    }
    let first = &arch[0];
    let ws = &weights[0];
    let kernel_dim = |axis: usize| ws.first().and_then(|w| w.array.shape().get(axis).copied());
    let (shape, why) = match first.class_name.as_str() {
        "Conv2D" | "DepthwiseConv2D" | "SeparableConv2D" => {
            let c = kernel_dim(2).unwrap_or(1);
            (vec![IMAGE_VALUES / c.max(1) / 28, 28, c], format!("{}'s kernel takes {c} input channel(s)", first.name))
        }
        "Dense" => match kernel_dim(0) {
            Some(n) => (vec![n], format!("{}'s kernel has {n} rows", first.name)),
            None => (vec![IMAGE_VALUES], "the grader's flat rows".to_string()),
        },
        _ => (vec![IMAGE_VALUES], "the grader's flat rows".to_string()),
    };
    Ok(InputShape { shape, source: format!("inferred from {why}"), inferred: true })
}

/// The input shape written in the files, if any.
pub fn declared_input_shape(arch: &[ArchEntry]) -> Option<InputShape> {
    for e in arch.iter().take(2) {
        let layer = e.layer();
        for key in ["batch_shape", "batch_input_shape"] {
            if let Some(dims) = layer.dims(key)
                && let Some(shape) = dims.get(1..).and_then(|d| d.iter().copied().collect::<Option<Vec<usize>>>())
            {
                let source = if e.class_name == "InputLayer" {
                    format!("InputLayer {}", e.name)
                } else {
                    format!("{key} of {}", e.name)
                };
                return Some(InputShape { shape, source, inferred: false });
            }
        }
        if let Some(dims) = e.config.get("build_config").and_then(|b| b.get("input_shape")).and_then(|v| v.as_array()) {
            let dims: Option<Vec<usize>> = dims.iter().skip(1).map(|d| d.as_u64().map(|d| d as usize)).collect();
            if let Some(shape) = dims {
                return Some(InputShape { shape, source: format!("build_config of {}", e.name), inferred: false });
            }
        }
        if e.class_name != "InputLayer" {
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::arch::parse_arch;
    use ndarray::ArrayD;
    use serde_json::json;

    /// Deterministic weights of a given shape.
    fn array(shape: &[usize], seed: usize) -> ArrayD<f32> {
        let n: usize = shape.iter().product();
        let data = (0..n).map(|i| (((i * 7 + seed * 13) % 23) as f32 - 11.0) * 0.01).collect();
        ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()
    }

    fn weights(arch: &[ArchEntry], shapes: &[(&str, Vec<usize>)]) -> Vec<Vec<Weight>> {
        arch.iter()
            .map(|e| {
                e.weights
                    .iter()
                    .map(|k| {
                        let (i, (_, s)) = shapes.iter().enumerate().find(|(_, (n, _))| n == k).unwrap();
                        Weight { key: k.clone(), array: array(s, i) }
                    })
                    .collect()
            })
            .collect()
    }

    fn outputs(arch: serde_json::Value, shapes: &[(&str, Vec<usize>)]) -> Result<Array2<f32>> {
        let arch = parse_arch(&arch).unwrap();
        let ws = weights(&arch, shapes);
        let m = Model::build_with_weights(&arch, ws)?;
        let images = Array2::from_shape_fn((3, IMAGE_VALUES), |(i, j)| ((i * 31 + j * 17) % 255) as f32 / 255.0);
        m.predict(images.view(), &|_| {})
    }

    /// A pass past its time limit stops at the next chunk with an error saying so; without a
    /// limit the same pass runs.
    #[test]
    fn a_pass_past_its_time_limit_stops() {
        let arch = parse_arch(&json!([
            {"name": "dense", "type": "Dense", "config": {"units": 10, "activation": "softmax"}, "weights": ["d_0", "d_1"]},
        ]))
        .unwrap();
        let mut m =
            Model::build_with_weights(&arch, weights(&arch, &[("d_0", vec![784, 10]), ("d_1", vec![10])])).unwrap();
        let images = Array2::from_elem((40 * CHUNK, IMAGE_VALUES), 0.5f32);
        assert!(m.predict(images.view(), &|_| {}).is_ok());
        m.time_limit = Some(std::time::Duration::ZERO);
        let e = m.predict(images.view(), &|_| {}).unwrap_err();
        assert!(e.message.contains("longer than fmtool's limit of 0 s"), "{}", e.message);
        assert!(e.hint.unwrap().contains("--no-budget"));
    }

    fn cnn(
        conv: serde_json::Value,
        depthwise: serde_json::Value,
        separable: serde_json::Value,
        dense: serde_json::Value,
    ) -> serde_json::Value {
        json!([
            {"name": "input", "type": "InputLayer", "config": {"batch_shape": [null, 28, 28, 1]}, "weights": []},
            {"name": "conv", "type": "Conv2D", "config": conv, "weights": ["conv_0", "conv_1"]},
            {"name": "dw", "type": "DepthwiseConv2D", "config": depthwise, "weights": ["dw_0", "dw_1"]},
            {"name": "sep", "type": "SeparableConv2D", "config": separable, "weights": ["sep_0", "sep_1", "sep_2"]},
            {"name": "flatten", "type": "Flatten", "config": {}, "weights": ["flatten_0"]},
            {"name": "dense", "type": "Dense", "config": dense, "weights": ["dense_0", "dense_1"]},
        ])
    }

    fn cnn_shapes() -> Vec<(&'static str, Vec<usize>)> {
        vec![
            ("conv_0", vec![3, 3, 1, 4]),
            ("conv_1", vec![4]),
            ("dw_0", vec![3, 3, 4, 2]),
            ("dw_1", vec![8]),
            ("sep_0", vec![3, 3, 8, 1]),
            ("sep_1", vec![1, 1, 8, 5]),
            ("sep_2", vec![1, 5]),
            ("dense_0", vec![22 * 22 * 5, 10]),
            ("dense_1", vec![1, 10]),
            ("flatten_0", vec![1]),
        ]
    }

    /// BatchNormalization and ReLU taken on by the Conv2D and Dense before them (through a
    /// Dropout, and behind a Dropout that reads them) give the same bits as the layers run one by
    /// one; a BatchNormalization whose input is also read elsewhere (the Add) is left alone. With
    /// 4 channels the steps run as passes; with 16 and 32 in one fused pass (fast::epilogue),
    /// and the second convolution takes the Winograd path, which applies them image by image.
    #[test]
    fn fused_element_wise_layers_give_the_same_bits() {
        for c in [4usize, 16, 32] {
            fused_element_wise_layers_give_the_same_bits_with(c);
        }
    }

    fn fused_element_wise_layers_give_the_same_bits_with(c: usize) {
        let bn = |name: &str, inbound: &str| {
            json!({"name": name, "type": "BatchNormalization", "config": {"epsilon": 0.001, "axis": -1},
                   "weights": [format!("{name}_0"), format!("{name}_1"), format!("{name}_2"), format!("{name}_3")],
                   "inbound": [inbound]})
        };
        let relu = |name: &str, inbound: &str| json!({"name": name, "type": "ReLU", "config": {}, "weights": [], "inbound": [inbound]});
        let mut layers = vec![
            json!({"name": "input", "type": "InputLayer", "config": {"batch_shape": [null, 28, 28, 1]}, "weights": [], "inbound": []}),
            json!({"name": "conv", "type": "Conv2D", "config": {"filters": c, "kernel_size": [3, 3], "padding": "same", "use_bias": false, "activation": "relu"}, "weights": ["conv_0"], "inbound": ["input"]}),
        ];
        layers.push(bn("bn", "conv"));
        layers.push(relu("relu", "bn"));
        layers.push(
            json!({"name": "drop", "type": "Dropout", "config": {"rate": 0.5}, "weights": [], "inbound": ["relu"]}),
        );
        layers.push(json!({"name": "conv2", "type": "Conv2D", "config": {"filters": c, "kernel_size": [3, 3], "padding": "same"}, "weights": ["conv2_0", "conv2_1"], "inbound": ["drop"]}));
        layers.push(bn("bn2", "conv2"));
        layers.push(json!({"name": "add", "type": "Add", "config": {}, "weights": [], "inbound": ["conv2", "bn2"]}));
        layers.push(json!({"name": "flatten", "type": "Flatten", "config": {}, "weights": [], "inbound": ["add"]}));
        layers.push(json!({"name": "dense", "type": "Dense", "config": {"units": c}, "weights": ["dense_0", "dense_1"], "inbound": ["flatten"]}));
        layers.push(bn("bn3", "dense"));
        layers.push(relu("relu3", "bn3"));
        layers.push(
            json!({"name": "drop3", "type": "Dropout", "config": {"rate": 0.5}, "weights": [], "inbound": ["relu3"]}),
        );
        layers.push(json!({"name": "out", "type": "Dense", "config": {"units": 10, "activation": "softmax"}, "weights": ["out_0", "out_1"], "inbound": ["drop3"]}));
        let mut shapes: Vec<(&str, Vec<usize>)> = vec![
            ("conv_0", vec![3, 3, 1, c]),
            ("conv2_0", vec![3, 3, c, c]),
            ("conv2_1", vec![c]),
            ("dense_0", vec![28 * 28 * c, c]),
            ("dense_1", vec![c]),
            ("out_0", vec![c, 10]),
            ("out_1", vec![10]),
        ];
        for name in ["bn", "bn2", "bn3"] {
            for k in 0..4 {
                shapes.push((Box::leak(format!("{name}_{k}").into_boxed_str()), vec![c]));
            }
        }
        let arch = parse_arch(&json!(layers)).unwrap();
        // Variances must be positive: every weight array here is a small ramp; shift the variances.
        let ws = |arch: &[ArchEntry]| {
            let mut ws = weights(arch, &shapes);
            for (e, w) in arch.iter().zip(&mut ws) {
                if e.class_name == "BatchNormalization" {
                    w[3].array.mapv_inplace(|v| v.abs() + 0.5);
                }
            }
            ws
        };
        let fused = Model::build_with_weights(&arch, ws(&arch)).unwrap();
        let plain = Model::build_graph(&arch, ws(&arch), false).unwrap();
        let aliased: Vec<&str> = fused
            .nodes
            .iter()
            .zip(&plain.nodes)
            .filter(|(f, p)| f.alias.is_some() && p.alias.is_none())
            .map(|(f, _)| f.name.as_str())
            .collect();
        assert_eq!(aliased, ["bn", "relu", "bn3", "relu3"], "which layers the ones before them took on");
        let images = Array2::from_shape_fn((5, IMAGE_VALUES), |(i, j)| ((i * 31 + j * 17) % 255) as f32 / 255.0 - 0.3);
        let (a, b) = (fused.predict(images.view(), &|_| {}).unwrap(), plain.predict(images.view(), &|_| {}).unwrap());
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{c} channels: {a:?}\n{b:?}");
    }

    #[test]
    fn config_keys_the_weights_determine_may_be_left_out() {
        let full = cnn(
            json!({"filters": 4, "kernel_size": [3, 3], "activation": "relu", "use_bias": true}),
            json!({"kernel_size": 3, "depth_multiplier": 2, "activation": "relu"}),
            json!({"filters": 5, "kernel_size": [3, 3], "activation": "relu"}),
            json!({"units": 10, "activation": "softmax"}),
        );
        let trimmed = cnn(
            json!({"activation": "relu"}),
            json!({"activation": "relu"}),
            json!({"activation": "relu"}),
            json!({"activation": "softmax"}),
        );
        let a = outputs(full, &cnn_shapes()).unwrap();
        let b = outputs(trimmed, &cnn_shapes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.ncols(), 10);
    }

    #[test]
    fn a_config_that_contradicts_the_weights_is_still_refused() {
        let wrong = cnn(json!({"filters": 6}), json!({}), json!({}), json!({}));
        let e = outputs(wrong, &cnn_shapes()).unwrap_err();
        assert!(e.message.contains("kernel of conv"), "{}", e.message);
    }

    #[test]
    fn a_dense_without_config_is_linear_and_biases_may_be_rows() {
        let shapes = vec![("d_0", vec![784, 10]), ("d_1", vec![10])];
        let plain = json!([{"name": "d", "type": "Dense", "config": {"units": 10, "activation": "linear"}, "weights": ["d_0", "d_1"]}]);
        let empty = json!([{"name": "d", "type": "Dense", "config": {}, "weights": ["d_0", "d_1"]}]);
        assert_eq!(outputs(plain.clone(), &shapes).unwrap(), outputs(empty, &shapes).unwrap());
        let row = vec![("d_0", vec![784, 10]), ("d_1", vec![1, 10])];
        assert_eq!(outputs(plain.clone(), &shapes).unwrap(), outputs(plain.clone(), &row).unwrap());
        let column = vec![("d_0", vec![784, 10]), ("d_1", vec![10, 1])];
        assert_eq!(outputs(plain.clone(), &shapes).unwrap(), outputs(plain.clone(), &column).unwrap());
        let two_axes = vec![("d_0", vec![784, 10]), ("d_1", vec![2, 5])];
        let e = outputs(plain, &two_axes).unwrap_err();
        assert!(e.message.contains("expected shape (10,), found (2, 5)"), "{}", e.message);
    }

    /// Builds `layers` after a (28, 28, 1) input and returns the error message.
    fn refused(layers: serde_json::Value, shapes: &[(&str, Vec<usize>)]) -> String {
        let mut all = vec![
            json!({"name": "in", "type": "InputLayer", "config": {"batch_shape": [null, 28, 28, 1]}, "weights": []}),
        ];
        all.extend(layers.as_array().unwrap().iter().cloned());
        let arch = parse_arch(&serde_json::Value::Array(all)).unwrap();
        let ws = weights(&arch, shapes);
        match Model::build_with_weights(&arch, ws) {
            Ok(_) => panic!("built"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn a_dense_with_zero_units_is_refused_before_the_next_layer_divides_by_it() {
        for next in [
            json!({"name": "d2", "type": "Dense", "config": {"units": 10}, "weights": ["d2_0", "d2_1"]}),
            json!({"name": "p", "type": "PReLU", "config": {}, "weights": ["p_0"]}),
            json!({"name": "bn", "type": "BatchNormalization", "config": {}, "weights": ["b0", "b1", "b2", "b3"]}),
            json!({"name": "ln", "type": "LayerNormalization", "config": {}, "weights": ["l0", "l1"]}),
        ] {
            let layers = json!([
                {"name": "f", "type": "Flatten", "config": {}, "weights": []},
                {"name": "d0", "type": "Dense", "config": {"units": 0}, "weights": ["d0_0", "d0_1"]},
                next,
            ]);
            let shapes = vec![
                ("d0_0", vec![784, 0]),
                ("d0_1", vec![0]),
                ("d2_0", vec![0, 10]),
                ("d2_1", vec![10]),
                ("p_0", vec![0]),
                ("b0", vec![0]),
                ("b1", vec![0]),
                ("b2", vec![0]),
                ("b3", vec![0]),
                ("l0", vec![0]),
                ("l1", vec![0]),
            ];
            let m = refused(layers, &shapes);
            assert!(m.contains("layer d0 (Dense)") && m.contains("axis of size 0"), "{m}");
        }
    }

    #[test]
    fn a_separable_conv_with_zero_filters_is_refused() {
        let layers = json!([{"name": "sep", "type": "SeparableConv2D", "config": {"filters": 0, "kernel_size": 3},
            "weights": ["s0", "s1"]}]);
        let m = refused(layers, &[("s0", vec![3, 3, 1, 1]), ("s1", vec![1, 1, 1, 0])]);
        assert!(m.contains("sep") && (m.contains("size 0") || m.contains("at least 1")), "{m}");
    }

    #[test]
    fn huge_paddings_croppings_and_upsamplings_are_refused_not_wrapped() {
        let big = 1u64 << 63;
        for (class, key, v) in [
            ("ZeroPadding2D", "padding", json!(big)),
            ("ZeroPadding2D", "padding", json!([[big, big], [1, 1]])),
            ("Cropping2D", "cropping", json!([[big, big], [0, 0]])),
            ("Cropping2D", "cropping", json!(big)),
            ("UpSampling2D", "size", json!(1000)),
            ("UpSampling2D", "size", json!([big, 2])),
            ("ZeroPadding2D", "padding", json!(100_000)),
        ] {
            let layers = json!([{"name": "evil", "type": class, "config": {key: v}, "weights": []}]);
            let m = refused(layers, &[]);
            assert!(m.contains("evil"), "{class} {m}");
            assert!(m.contains("at most") || m.contains("more than fmtool runs"), "{class} {m}");
        }
    }

    #[test]
    fn huge_reshape_targets_and_input_shapes_are_refused() {
        let layers = json!([{"name": "r", "type": "Reshape", "config": {"target_shape": [4294967296i64, 4294967296i64, -1]}, "weights": []}]);
        assert!(refused(layers, &[]).contains("cannot reshape"));
        let arch = parse_arch(&json!([
            {"name": "in", "type": "InputLayer", "config": {"batch_shape": [null, 4294967296u64, 4294967296u64, 1]}, "weights": []},
            {"name": "f", "type": "Flatten", "config": {}, "weights": []},
        ]))
        .unwrap();
        let e = Model::build_with_weights(&arch, vec![vec![], vec![]]).err().unwrap();
        assert!(e.message.contains("the model's input"), "{}", e.message);
    }

    #[test]
    fn same_pooling_with_a_huge_pool_size_runs_at_once() {
        let arch = json!([
            {"name": "in", "type": "InputLayer", "config": {"batch_shape": [null, 28, 28, 1]}, "weights": []},
            {"name": "pool", "type": "MaxPooling2D", "config": {"pool_size": 100000, "padding": "same"}, "weights": []},
            {"name": "f", "type": "Flatten", "config": {}, "weights": []},
        ]);
        let t = std::time::Instant::now();
        let y = outputs(arch, &[]).unwrap();
        assert!(t.elapsed().as_secs_f32() < 1.0, "{:?}", t.elapsed());
        assert_eq!(y.ncols(), 1);
    }

    #[test]
    fn identity_layers_are_handed_on_not_run() {
        let mut list = vec![json!({"name": "f", "type": "Flatten", "config": {}, "weights": []})];
        for i in 0..2000 {
            list.push(json!({"name": format!("drop{i}"), "type": "Dropout", "config": {"rate": 0.5}, "weights": []}));
        }
        list.push(json!({"name": "d", "type": "Dense", "config": {}, "weights": ["d_0", "d_1"]}));
        list.push(json!({"name": "last_drop", "type": "Dropout", "config": {}, "weights": []}));
        let shapes = vec![("d_0", vec![784, 10]), ("d_1", vec![10])];
        let plain = json!([{"name": "d", "type": "Dense", "config": {}, "weights": ["d_0", "d_1"]}]);
        let arch = parse_arch(&serde_json::Value::Array(list)).unwrap();
        let m = Model::build_with_weights(&arch, weights(&arch, &shapes)).unwrap();
        assert!(m.nodes[1..m.nodes.len() - 2].iter().all(|n| n.alias == Some(Source::Node(0))));
        assert_eq!(m.nodes.last().unwrap().alias, Some(Source::Node(m.nodes.len() - 2)));
        let images = Array2::from_shape_fn((200, IMAGE_VALUES), |(i, j)| ((i * 31 + j * 17) % 255) as f32 / 255.0);
        let t = std::time::Instant::now();
        let y = m.predict(images.view(), &|_| {}).unwrap();
        assert!(t.elapsed().as_secs_f32() < 0.5, "{:?}", t.elapsed());
        let want = outputs(plain, &shapes).unwrap();
        assert_eq!(y.slice(ndarray::s![..3, ..]), want);
    }

    /// The model's input goes to its only reader without a copy (a Flatten first reshapes it in
    /// place); read by two layers, it is shared; and a model of identities hands it back.
    #[test]
    fn the_model_input_is_handed_to_its_only_reader_or_shared() {
        let images = Array2::from_shape_fn((3, IMAGE_VALUES), |(i, j)| ((i * 31 + j * 17) % 255) as f32 / 255.0);
        let input = json!({"name": "input", "type": "InputLayer", "config": {"batch_shape": [null, 28, 28]}, "weights": [], "inbound": []});
        let dense = |inbound: &str| json!({"name": "d", "type": "Dense", "config": {"units": 10}, "weights": ["d_0", "d_1"], "inbound": [inbound]});
        let shapes = vec![("d_0", vec![784, 10]), ("d_1", vec![10])];
        let run = |list: serde_json::Value| {
            let arch = parse_arch(&list).unwrap();
            Model::build_with_weights(&arch, weights(&arch, &shapes)).unwrap().predict(images.view(), &|_| {}).unwrap()
        };
        // x + x and 2 x are the same float32 values.
        let two_readers = run(json!([
            input,
            {"name": "f1", "type": "Flatten", "config": {}, "weights": [], "inbound": ["input"]},
            {"name": "f2", "type": "Flatten", "config": {}, "weights": [], "inbound": ["input"]},
            {"name": "add", "type": "Add", "config": {}, "weights": [], "inbound": ["f1", "f2"]},
            dense("add"),
        ]));
        let one_reader = run(json!([
            input,
            {"name": "f", "type": "Flatten", "config": {}, "weights": [], "inbound": ["input"]},
            {"name": "twice", "type": "Rescaling", "config": {"scale": 2.0, "offset": 0.0}, "weights": [], "inbound": ["f"]},
            dense("twice"),
        ]));
        assert!(two_readers.iter().zip(&one_reader).all(|(a, b)| a.to_bits() == b.to_bits()));
        let doubled = run(json!([
            input,
            {"name": "r", "type": "Reshape", "config": {"target_shape": [784]}, "weights": [], "inbound": ["input"]},
            {"name": "twice", "type": "Rescaling", "config": {"scale": 2.0, "offset": 0.0}, "weights": [], "inbound": ["r"]},
            dense("twice"),
        ]));
        assert_eq!(doubled, one_reader);
        let arch = parse_arch(&json!([input, {"name": "drop", "type": "Dropout", "config": {"rate": 0.5}, "weights": [], "inbound": ["input"]}])).unwrap();
        let m = Model::build_with_weights(&arch, weights(&arch, &[])).unwrap();
        assert_eq!(m.predict(images.view(), &|_| {}).unwrap(), images);
    }

    #[test]
    fn weight_names_on_layers_without_weights_are_never_looked_up() {
        let arch = parse_arch(&json!([
            {"name": "flatten", "type": "Flatten", "config": {}, "weights": ["flatten_0", "flatten_1"]},
            {"name": "drop", "type": "Dropout", "config": {"rate": 0.5}, "weights": ["drop_0"]},
            {"name": "d", "type": "Dense", "config": {"activation": "softmax"}, "weights": ["d_0", "d_1"]},
        ]))
        .unwrap();
        let arrays = vec![("d_0".to_string(), array(&[784, 10], 0)), ("d_1".to_string(), array(&[10], 1))];
        let cur = crate::model::npz::write_npz(std::io::Cursor::new(Vec::new()), &arrays).unwrap();
        let npz = crate::model::npz::read_npz_bytes(std::path::Path::new("m.npz"), cur.get_ref()).unwrap();
        let m = Model::build(&arch, &npz).unwrap();
        assert_eq!(m.output_shape(), &vec![10]);
        // A layer that has weights still needs them.
        let arch =
            parse_arch(&json!([{"name": "d", "type": "Dense", "config": {}, "weights": ["d_0", "nope"]}])).unwrap();
        let e = Model::build(&arch, &npz).err().unwrap();
        assert!(e.message.contains("$[0].weights[1]"), "{}", e.message);
    }
}

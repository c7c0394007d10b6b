//! What one image costs a model, known from the shapes before anything runs, and the budget a
//! model must stay within. The model file is as untrusted as the student's code and runs inside
//! fmtool's own process: a 500-parameter model (a convolution after an UpSampling2D, thirty ReLUs
//! on 16 M values, an Add over eight upsampled branches) can take hours or gigabytes per image
//! while every layer stays under the per-layer caps of `layers`.
//!
//! The cost is counted over every layer: its floating-point operations (`Op::flops_per_sample`:
//! Dense over every position, convolutions over their real output, pooling over the taps it
//! visits), at least one per output value (element-wise layers, merges, reshapes), and the bytes of
//! the outputs alive at once as the engine runs the layers in order (an output lives from its layer
//! to its last reader; identity layers hold nothing). `check`, `score`, `grade` and `predict` share
//! it: check reports a model over the budget, the others refuse to run it unless `--no-budget`.

use serde::Serialize;

/// One layer as the cost sees it.
#[derive(Debug, Clone)]
pub struct LayerCost {
    pub name: String,
    pub class_name: String,
    /// Per image.
    pub flops: u64,
    pub output_values: u64,
    /// The layers it reads (`None`: the model's input).
    pub inputs: Vec<Option<usize>>,
    /// It hands its input on unchanged (Dropout): no work, no memory of its own.
    pub identity: bool,
}

/// A model's cost per image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    pub flops: u64,
    /// The most bytes of layer outputs (float32) alive at once.
    pub live_bytes: u64,
    /// The layer whose output brings the live bytes to their peak.
    pub peak_at: Option<(String, String)>,
    /// Each layer that does work, in order: name, class and operations.
    #[serde(skip)]
    pub steps: Vec<(String, String, u64)>,
}

/// The most one image may cost. The shipped ensemble costs 0.18 GFLOP and a few MiB; the largest
/// student model of the course far less. At the engine's speed on a laptop core (a few GFLOP/s)
/// the test set then takes minutes at worst, not hours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Budget {
    pub flops: u64,
    pub live_bytes: u64,
}

impl Budget {
    pub const PER_IMAGE: Budget = Budget { flops: 500_000_000, live_bytes: 256 << 20 };
}

/// The longest the engine's pass over the test set may take under the budget: the shipped
/// ensemble takes 9 s on two cores; a model at the budget's limit about a minute at the engine's
/// speed; ten minutes leaves room for a slow laptop.
pub const TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// The cost of layers given in the order they run.
pub fn cost(layers: &[LayerCost], input_values: u64) -> Cost {
    // Where an identity layer's output really comes from.
    let mut source: Vec<Option<usize>> = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let s = match (l.identity, l.inputs.as_slice()) {
            (true, [Some(j)]) => source[*j],
            (true, [None]) => None,
            _ => Some(i),
        };
        source.push(s);
    }
    let resolve = |s: &Option<usize>| s.and_then(|j| source[j]);
    // The last layer that reads each output (the model's own output lives to the end).
    let mut last_reader: Vec<usize> = (0..layers.len()).collect();
    let mut input_last = 0;
    for (i, l) in layers.iter().enumerate().filter(|(_, l)| !l.identity) {
        for s in &l.inputs {
            match resolve(s) {
                Some(j) => last_reader[j] = last_reader[j].max(i),
                None => input_last = input_last.max(i),
            }
        }
    }
    if let Some(Some(out)) = layers.len().checked_sub(1).map(|i| source[i]) {
        last_reader[out] = usize::MAX;
    }
    // The outputs each layer frees as their last reader.
    let mut frees: Vec<Vec<usize>> = vec![Vec::new(); layers.len()];
    for (j, &r) in last_reader.iter().enumerate() {
        if r < layers.len() && source[j] == Some(j) {
            frees[r].push(j);
        }
    }
    let mut flops = 0u64;
    let mut steps = Vec::new();
    let mut live = input_values.saturating_mul(4);
    let mut peak = (live, None::<usize>);
    for (i, l) in layers.iter().enumerate().filter(|(_, l)| !l.identity) {
        let work = l.flops.max(l.output_values);
        flops = flops.saturating_add(work);
        steps.push((l.name.clone(), l.class_name.clone(), work));
        live = live.saturating_add(l.output_values.saturating_mul(4));
        if live > peak.0 {
            peak = (live, Some(i));
        }
        // Outputs whose last reader this was are freed.
        for &j in &frees[i] {
            live = live.saturating_sub(layers[j].output_values.saturating_mul(4));
        }
        if input_last == i {
            live = live.saturating_sub(input_values.saturating_mul(4));
        }
    }
    let peak_at = peak.1.map(|i| (layers[i].name.clone(), layers[i].class_name.clone()));
    Cost { flops, live_bytes: peak.0, peak_at, steps }
}

impl Cost {
    /// The layer that costs the most operations (the first of equals): name, class, operations.
    pub fn heaviest(&self) -> Option<&(String, String, u64)> {
        self.steps.iter().rev().max_by_key(|s| s.2)
    }

    /// The layer at which the operations so far pass `budget`, if they do.
    pub fn crossing(&self, budget: &Budget) -> Option<&str> {
        let mut total = 0u64;
        self.steps
            .iter()
            .find(|s| {
                total = total.saturating_add(s.2);
                total > budget.flops
            })
            .map(|s| s.0.as_str())
    }

    /// The layer to point at for a model over `budget`: where the operations pass it, else where
    /// the live bytes peak.
    pub fn culprit(&self, budget: &Budget) -> Option<&str> {
        self.crossing(budget).or(self.peak_at.as_ref().map(|p| p.0.as_str()))
    }

    /// Why the model is over `budget`, naming the layer and the figures; `None` within it.
    pub fn over(&self, budget: &Budget) -> Option<String> {
        let mut why = Vec::new();
        if self.flops > budget.flops {
            let (name, class, work) = self.heaviest().cloned().unwrap_or_default();
            let at = self.steps.iter().find(|s| Some(s.0.as_str()) == self.crossing(budget));
            let crossed = at.map(|s| format!(": the layers up to {} ({}) pass it", s.0, s.1)).unwrap_or_default();
            why.push(format!(
                "it costs {} per image, more than fmtool's budget of {}{crossed}; the costliest layer is {name} ({class}), {}",
                gflop(self.flops),
                gflop(budget.flops),
                gflop(work)
            ));
        }
        if self.live_bytes > budget.live_bytes {
            let (name, class) = self.peak_at.clone().unwrap_or_default();
            why.push(format!(
                "its layer outputs alive at once hold {} per image at layer {name} ({class}), more than fmtool's budget of {}",
                mib(self.live_bytes),
                mib(budget.live_bytes)
            ));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// `0.18 GFLOP` (budgets and large models), `0.10 MFLOP` below a tenth of a GFLOP.
pub fn gflop(flops: u64) -> String {
    if flops >= 100_000_000 {
        format!("{:.2} GFLOP", flops as f64 / 1e9)
    } else {
        format!("{:.2} MFLOP", flops as f64 / 1e6)
    }
}

/// `12.3 MiB`, `3.4 KiB` below a MiB.
pub fn mib(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// How every refusal of a model for its cost begins (the whole model's budget here, one layer's
/// cap in `layers::build`), so that `score` refuses both alike.
pub const TOO_EXPENSIVE: &str = "too expensive to run";

/// Whether an error is a refusal for cost.
pub fn is_too_expensive(e: &crate::error::Error) -> bool {
    e.message.contains(TOO_EXPENSIVE)
}

/// The hint for a model over the budget.
pub const HINT: &str = "no model of this assignment needs that much: look for an UpSampling2D, a huge kernel or pool, or many branches of one large tensor; `--no-budget` runs it anyway";

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, flops: u64, values: u64, inputs: &[Option<usize>], identity: bool) -> LayerCost {
        LayerCost {
            name: name.into(),
            class_name: "X".into(),
            flops,
            output_values: values,
            inputs: inputs.to_vec(),
            identity,
        }
    }

    #[test]
    fn a_chain_holds_two_outputs_at_once() {
        // input 784 → a 100 → drop (identity) → b 10: at b, a's output and b's are alive.
        let layers = [
            layer("a", 1000, 100, &[None], false),
            layer("drop", 0, 100, &[Some(0)], true),
            layer("b", 2000, 10, &[Some(1)], false),
        ];
        let c = cost(&layers, 784);
        assert_eq!(c.flops, 3000);
        assert_eq!(c.live_bytes, (784 + 100) * 4);
        assert_eq!(c.heaviest(), Some(&("b".into(), "X".into(), 2000)));
        assert_eq!(c.peak_at, Some(("a".into(), "X".into())));
    }

    #[test]
    fn element_wise_layers_cost_their_outputs_and_branches_stay_alive() {
        // An upsampled tensor of 1 M values read by 8 ReLU branches, then added: all 8 are alive.
        let mut layers = vec![layer("up", 0, 1 << 20, &[None], false)];
        for k in 0..8 {
            layers.push(layer(&format!("relu{k}"), 0, 1 << 20, &[Some(0)], false));
        }
        let branches: Vec<Option<usize>> = (1..=8).map(Some).collect();
        layers.push(layer("add", 0, 1 << 20, &branches, false));
        let c = cost(&layers, 784);
        assert_eq!(c.flops, 10 << 20);
        // At the last branch: up and the 8 branches (the input was freed after up).
        assert_eq!(c.live_bytes, 4 * 9 * (1 << 20));
        assert!(c.over(&Budget { flops: u64::MAX, live_bytes: 32 << 20 }).unwrap().contains("layer relu7 (X)"));
    }

    #[test]
    fn the_reason_names_the_layer_and_the_figures() {
        let c = cost(&[layer("conv", 4_000_000_000, 10, &[None], false)], 784);
        let why = c.over(&Budget::PER_IMAGE).unwrap();
        assert!(
            why.contains("4.00 GFLOP per image") && why.contains("0.50 GFLOP") && why.contains("layer is conv (X)"),
            "{why}"
        );
        // A chain of cheap layers: the one where the total passes the budget is named.
        let chain: Vec<LayerCost> = (0..10)
            .map(|k| layer(&format!("r{k}"), 0, 100_000_000, &[if k == 0 { None } else { Some(k - 1) }], false))
            .collect();
        let c = cost(&chain, 784);
        assert_eq!(c.crossing(&Budget::PER_IMAGE), Some("r5"));
        assert!(c.over(&Budget::PER_IMAGE).unwrap().contains("up to r5 (X) pass it"));
        assert_eq!(cost(&[layer("d", 100, 10, &[None], false)], 784).over(&Budget::PER_IMAGE), None);
    }
}

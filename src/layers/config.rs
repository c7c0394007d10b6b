//! Typed access to a layer's Keras `get_config()` dict, tolerant of how Keras 2 and Keras 3 spell
//! the same thing (ints or lists for sizes, strings or dicts for activations and dtypes).

use crate::err;
use crate::error::Result;
use serde_json::{Map, Value};

/// A layer's name, class and config, borrowed from the architecture JSON.
#[derive(Clone, Copy)]
pub struct LayerConfig<'a> {
    pub name: &'a str,
    pub class_name: &'a str,
    pub config: &'a Map<String, Value>,
}

impl<'a> LayerConfig<'a> {
    pub fn new(name: &'a str, class_name: &'a str, config: &'a Map<String, Value>) -> Self {
        LayerConfig { name, class_name, config }
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.config.get(key).filter(|v| !v.is_null())
    }

    fn bad(&self, key: &str, want: &str) -> crate::error::Error {
        err!(
            "layer {} ({}): config key {:?} should be {want}, found {}",
            crate::text::clip(self.name, 100),
            self.class_name,
            crate::text::clip(key, 100),
            crate::text::clip(&self.config.get(key).map(|v| v.to_string()).unwrap_or_else(|| "nothing".into()), 100)
        )
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        let v = self.get(key).and_then(Value::as_u64).ok_or_else(|| self.bad(key, "a non-negative integer"))?;
        self.bounded(key, v)
    }

    /// Refuses a size beyond [`super::MAX_CONFIG_INT`], so no shape computed from config values
    /// can overflow (a padding of 2^63 would wrap to a small number in a release build).
    pub fn bounded(&self, key: &str, v: u64) -> Result<usize> {
        match usize::try_from(v) {
            Ok(v) if v <= super::MAX_CONFIG_INT => Ok(v),
            _ => Err(self.bad(key, &format!("at most {}", super::MAX_CONFIG_INT))),
        }
    }

    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        if self.get(key).is_none() { Ok(default) } else { self.usize(key) }
    }

    pub fn f32_or(&self, key: &str, default: f32) -> Result<f32> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_f64().map(|x| x as f32).ok_or_else(|| self.bad(key, "a number")),
        }
    }

    /// An optional number: `None` when absent or `null` (e.g. ReLU's `max_value`).
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(|x| Some(x as f32)).ok_or_else(|| self.bad(key, "a number or null")),
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.bad(key, "true or false")),
        }
    }

    pub fn str_or(&self, key: &str, default: &'a str) -> Result<&'a str> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_str().ok_or_else(|| self.bad(key, "a string")),
        }
    }

    /// A list of integers, or one integer repeated `n` times (Keras accepts `kernel_size=3`).
    pub fn usizes(&self, key: &str, n: usize) -> Result<Vec<usize>> {
        let v = self.get(key).ok_or_else(|| self.bad(key, &format!("an integer or a list of {n}")))?;
        if let Some(x) = v.as_u64() {
            return Ok(vec![self.bounded(key, x)?; n]);
        }
        let list = v.as_array().ok_or_else(|| self.bad(key, &format!("an integer or a list of {n}")))?;
        let out: Option<Vec<u64>> = list.iter().map(Value::as_u64).collect();
        match out {
            Some(o) if o.len() == n => o.into_iter().map(|x| self.bounded(key, x)).collect(),
            _ => Err(self.bad(key, &format!("a list of {n} integers"))),
        }
    }

    pub fn usizes_or(&self, key: &str, n: usize, default: usize) -> Result<Vec<usize>> {
        if self.get(key).is_none() { Ok(vec![default; n]) } else { self.usizes(key, n) }
    }

    /// An optional list of integers or nulls (e.g. `batch_input_shape: [null, 28, 28]`).
    pub fn dims(&self, key: &str) -> Option<Vec<Option<usize>>> {
        let list = self.get(key)?.as_array()?;
        Some(list.iter().map(|x| x.as_u64().map(|x| x as usize)).collect())
    }

    /// The layer's `data_format`, refusing `channels_first`, which fmtool does not run.
    pub fn require_channels_last(&self) -> Result<()> {
        match self.str_or("data_format", "channels_last")? {
            "channels_last" => Ok(()),
            other => Err(err!(
                "layer {} ({}): data_format {other:?} is not supported; fmtool runs channels_last models",
                self.name,
                self.class_name
            )
            .with_hint("build the model with the default data_format=\"channels_last\"")),
        }
    }
}

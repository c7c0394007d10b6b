//! `fmtool convert`: a Keras .h5 / .keras file into the course's fashion_mnist.json + fashion_mnist.npz.
//! The model is read, translated and built by the engine in memory first, so that nothing is
//! written for a model fmtool cannot run; then both files are written to temporary files in the
//! output directory and renamed into place together, so an error never leaves a half-written or
//! half-replaced model behind.

use crate::atomic::{self, Undo};
use crate::cli::ConvertArgs;
use crate::engine::{InputShape, Model};
use crate::error::{Error, Result};
use crate::keras::{self, Layout};
use crate::layers::{Shape, Weight};
use crate::model::{ArchEntry, JSON_NAME, NPZ_NAME};
use crate::{err, layers};
use ndarray::ArrayD;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One row of the summary, like Keras' `model.summary()`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SummaryRow {
    pub name: String,
    #[serde(rename = "type")]
    pub class_name: String,
    /// Per-sample output shape (without the batch axis).
    pub output_shape: Shape,
    pub params: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ConvertReport {
    /// The Keras file that was converted.
    pub input: String,
    pub layout: Layout,
    pub keras_version: Option<String>,
    /// The files written.
    pub json: String,
    pub npz: String,
    /// The model's per-sample input shape and where it came from.
    pub input_shape: InputShape,
    /// Nested models whose layers were inlined.
    pub inlined: Vec<String>,
    pub layers: Vec<SummaryRow>,
    pub total_params: usize,
}

/// A model converted in memory, with the bytes of both files ready to write.
pub struct Converted {
    /// The file's model (its layers' weights moved into `model`).
    pub keras: keras::KerasModel,
    pub entries: Vec<ArchEntry>,
    /// The built engine model, which proves every layer runs and every shape fits.
    pub model: Model,
    /// fashion_mnist.json: a list in `model.layers` order, keys in file order.
    pub json: String,
    /// fashion_mnist.npz, exactly as `np.savez` lays it out, arrays in entry order.
    pub npz: Vec<u8>,
}

/// Converts in memory: reads the Keras file, refuses layers the engine cannot run (naming all of
/// them), and builds the engine model so that shape problems surface before anything is written.
pub fn convert_model(path: &Path) -> Result<Converted> {
    translate(keras::read_model(path)?, &path.display().to_string())
}

/// Like [`convert_model`], from the file's bytes; `shown` names it in messages.
pub fn convert_bytes(bytes: Vec<u8>, shown: &str) -> Result<Converted> {
    translate(keras::read_model_bytes(bytes, shown)?, shown)
}

fn translate(mut km: keras::KerasModel, shown: &str) -> Result<Converted> {
    let unsupported: Vec<String> = km
        .layers
        .iter()
        .filter(|l| layers::lookup(&l.class_name).is_none())
        .map(|l| format!("{} ({})", l.name, l.class_name))
        .collect();
    if !unsupported.is_empty() {
        return Err(err!("{shown}: fmtool cannot run {} of its layers: {}", unsupported.len(), unsupported.join(", "))
            .with_hint("run `fmtool layers` for the layer types fmtool runs, and replace these layers in the model"));
    }
    let (entries, weights) = km.take_course();
    let json = serde_json::to_string(&serde_json::Value::Array(entries.iter().map(ArchEntry::to_json).collect()))
        .map_err(|e| err!("cannot serialize the architecture: {e}"))?;
    // The arrays move into the npz writer's list and back, so a 10 MB model is not copied twice.
    let counts: Vec<usize> = weights.iter().map(Vec::len).collect();
    let arrays: Vec<(String, ArrayD<f32>)> =
        weights.into_iter().flatten().map(|Weight { key, array }| (key, array)).collect();
    let bytes: usize = arrays.iter().map(|(k, a)| a.len() * 4 + 2 * k.len() + 256).sum();
    let npz =
        crate::model::npz::write_npz(std::io::Cursor::new(Vec::with_capacity(bytes + 1024)), &arrays)?.into_inner();
    let mut arrays = arrays.into_iter();
    let weights: Vec<Vec<Weight>> =
        counts.iter().map(|&n| arrays.by_ref().take(n).map(|(key, array)| Weight { key, array }).collect()).collect();
    let model = Model::build_with_weights(&entries, weights).map_err(|e| e.context(shown))?;
    Ok(Converted { keras: km, entries, model, json, npz })
}

pub fn run(args: &ConvertArgs) -> Result<ConvertReport> {
    let json_path = args.out.join(JSON_NAME);
    let npz_path = args.out.join(NPZ_NAME);
    // Refuse early, before the work; write_together checks again when it renames.
    if !args.force {
        refuse_existing(&[&json_path, &npz_path])?;
    }
    let Converted { keras: km, model, json, npz, .. } = convert_model(&args.input)?;
    write_together(&args.out, &[(NPZ_NAME, npz.as_slice()), (JSON_NAME, json.as_bytes())], args.force)?;
    let layers = model
        .nodes
        .iter()
        .map(|n| SummaryRow {
            name: n.name.clone(),
            class_name: n.class_name.clone(),
            output_shape: n.output_shape.clone(),
            params: n.params,
        })
        .collect();
    Ok(ConvertReport {
        input: args.input.display().to_string(),
        layout: km.layout,
        keras_version: km.keras_version,
        json: json_path.display().to_string(),
        npz: npz_path.display().to_string(),
        input_shape: model.input.clone(),
        inlined: km.inlined,
        total_params: model.params(),
        layers,
    })
}

fn refuse_existing(paths: &[&Path]) -> Result<()> {
    // symlink_metadata, not exists(): a dangling symbolic link is there too, and must not be
    // written through or silently replaced.
    let existing: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            let m = p.symlink_metadata().ok()?;
            let link = if m.file_type().is_symlink() { " (a symbolic link)" } else { "" };
            Some(format!("{}{link}", p.display()))
        })
        .collect();
    match existing.as_slice() {
        [] => Ok(()),
        [one] => Err(err!("{one} already exists; fmtool does not overwrite it")
            .with_hint("pass --force to replace it, or --out DIR to write elsewhere")),
        many => Err(err!("{} already exist; fmtool does not overwrite them", many.join(" and "))
            .with_hint("pass --force to replace them, or --out DIR to write elsewhere")),
    }
}

/// Writes `files` (name, bytes) into `dir` all together or not at all: each goes to a temporary
/// file in `dir` first; then existing targets (only with `force`) are moved aside and the new
/// files renamed into place. Every step is recorded in [`crate::atomic`]'s undo list, so a
/// failure, or SIGINT/SIGTERM, undoes them all, including creating `dir`: `dir` is left as it was.
pub fn write_together(dir: &Path, files: &[(&str, &[u8])], force: bool) -> Result<()> {
    let mark = atomic::mark();
    let result = create_dirs(dir).and_then(|()| write_steps(dir, files, force));
    match result {
        Ok(()) => atomic::commit(mark),
        Err(_) => atomic::rollback(mark),
    }
    result
}

/// Creates `dir` and missing parents, recording each folder it created.
fn create_dirs(dir: &Path) -> Result<()> {
    let mut missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).collect();
    missing.reverse();
    for d in missing {
        atomic::tracked(|u| {
            std::fs::create_dir(d).map_err(|e| Error::io("create the directory", d, &e))?;
            u.push(Undo::RemoveDir(d.to_path_buf()));
            Ok::<_, Error>(())
        })?;
    }
    Ok(())
}

fn write_steps(dir: &Path, files: &[(&str, &[u8])], force: bool) -> Result<()> {
    // Created with an ordinary file's mode: the outputs were 0600 before (issue 5's model/).
    let temp = |prefix: &str| {
        atomic::tracked(|u| {
            let t = atomic::temp_file_in(dir, prefix)?;
            u.push(Undo::RemoveFile(t.path().to_path_buf()));
            Ok::<_, Error>(t)
        })
    };
    // 1. Every new file complete on disk under a temporary name.
    let mut staged = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let mut t = temp(".fmtool-new-")?;
        t.write_all(bytes).map_err(|e| Error::io("write", t.path(), &e))?;
        t.as_file().sync_all().map_err(|e| Error::io("write", t.path(), &e))?;
        staged.push((dir.join(name), t));
    }
    // 2. Rename into place. Anything already there counts, a dangling symbolic link too: without
    // --force it is refused; with it, the link itself is moved aside (never written through).
    let mut aside: Vec<PathBuf> = Vec::new();
    for (target, t) in staged {
        if target.symlink_metadata().is_ok() {
            if !force {
                return refuse_existing(&[&target]);
            }
            let old =
                temp(".fmtool-old-")?.into_temp_path().keep().map_err(|e| Error::io("replace", &target, &e.error))?;
            atomic::tracked(|u| {
                std::fs::rename(&target, &old).map_err(|e| Error::io("replace", &target, &e))?;
                u.push(Undo::Restore { aside: old.clone(), target: target.clone() });
                Ok::<_, Error>(())
            })?;
            aside.push(old);
        }
        atomic::tracked(|u| {
            t.persist_noclobber(&target).map_err(|e| Error::io("write", &target, &e.error))?;
            u.push(Undo::RemoveFile(target.clone()));
            Ok::<_, Error>(())
        })?;
        // The written file must be there as a regular file before it is reported.
        if !target.symlink_metadata().is_ok_and(|m| m.is_file()) {
            return Err(err!("cannot write {}: it is not there after the rename", target.display()));
        }
    }
    // 3. Done: the replaced files go (an interrupted removal is finished by the signal thread).
    atomic::tracked(|u| u.extend(aside.iter().cloned().map(Undo::RemoveFile)));
    for old in &aside {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    /// The undo list is one per process (a signal must see every step), so the tests that write
    /// through it take turns: a mark of one would otherwise cut another's steps.
    static UNDO_LIST: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn files_land_together_and_replace_only_with_force() {
        let _turn = UNDO_LIST.lock().unwrap_or_else(|p| p.into_inner());
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        write_together(&dir, &[("x", b"1"), ("y", b"2")], false).unwrap();
        assert_eq!(names(&dir), ["x", "y"]);
        let e = write_together(&dir, &[("x", b"3")], false).unwrap_err();
        assert!(e.hint.unwrap().contains("--force"));
        assert_eq!(std::fs::read(dir.join("x")).unwrap(), b"1");
        write_together(&dir, &[("x", b"3"), ("y", b"4")], true).unwrap();
        assert_eq!(names(&dir), ["x", "y"]);
        assert_eq!(std::fs::read(dir.join("y")).unwrap(), b"4");
    }

    #[test]
    fn a_failure_restores_the_directory() {
        let _turn = UNDO_LIST.lock().unwrap_or_else(|p| p.into_inner());
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("x"), b"old").unwrap();
        // "y" is a directory, so renaming a file over it fails after "x" was already replaced.
        std::fs::create_dir(tmp.path().join("y")).unwrap();
        std::fs::write(tmp.path().join("y/keep"), b"").unwrap();
        assert!(write_together(tmp.path(), &[("x", b"new"), ("y", b"new")], true).is_err());
        assert_eq!(names(tmp.path()), ["x", "y"]);
        assert_eq!(std::fs::read(tmp.path().join("x")).unwrap(), b"old");
        // A directory it created is removed again.
        let fresh = tmp.path().join("new/deeper");
        assert!(write_together(&fresh, &[("x", b"1"), ("x", b"2")], false).is_err());
        assert!(!tmp.path().join("new").exists());
    }
}

//! The manager's operations: create, replace, delete, pause, resume, restart (from the API),
//! apply or remove a spec file (from the folder watcher), and shutdown. Each holds the
//! operations lock while it changes the manager, so changes never interleave; a new spec is
//! checked (plugins resolved and their `init` run, at most [`CHECKS_AT_ONCE`] at a time,
//! within [`CHECK_DEADLINE`]) before the lock is taken, so a slow plugin cannot stall the
//! other operations.

use std::path::Path;
use std::time::Duration;

use super::state::{Entry, Note, State};
use super::{Detail, Manager, ManagerError, StatusView, files};
use crate::policy::Policy;
use crate::spec::{self, Loaded, SpecError, SpecErrors};

/// Parses spec text of the operator's folder; `origin` names it in errors (a file path).
fn parse(origin: &str, text: &str) -> Result<Loaded, SpecErrors> {
    spec::load_str(origin, text, &|name| std::env::var(name).ok())
}

/// Parses spec text sent through the API and checks it against the host's policy: only the
/// variables it names are interpolated, and what the spec uses must be granted
/// ([`crate::policy`]). Error messages never show an interpolated value.
pub(super) fn parse_untrusted(policy: &Policy, text: &str) -> Result<Loaded, ManagerError> {
    let origin = "request body";
    let asked = std::cell::RefCell::new(Vec::<String>::new());
    let lookup = |name: &str| {
        if policy.allows_env(name) {
            std::env::var(name).ok()
        } else {
            asked.borrow_mut().push(name.to_owned());
            Some(String::new())
        }
    };
    let parsed = spec::load_str(origin, text, &lookup);
    let refused = asked.into_inner();
    if !refused.is_empty() {
        let errors = refused
            .iter()
            .map(|name| {
                SpecError::at(
                    origin,
                    0,
                    0,
                    format!(
                        "`${{{name}}}` is refused: specs from the API may interpolate only the \
                         variables the operator names with --api-grant-env (here: {})",
                        if policy.env.is_empty() {
                            "none".to_owned()
                        } else {
                            policy.env.join(", ")
                        }
                    ),
                )
            })
            .collect();
        return Err(ManagerError::Refused(SpecErrors(errors)));
    }
    let hide = |mut errors: SpecErrors| {
        for error in &mut errors.0 {
            for name in &policy.env {
                if let Ok(value) = std::env::var(name).map(|v| v.trim().to_owned())
                    && !value.is_empty()
                {
                    error.message = error.message.replace(&value, &format!("${{{name}}}"));
                }
            }
        }
        errors
    };
    let loaded = parsed.map_err(|e| ManagerError::Invalid(hide(e)))?;
    let refused = policy.check(&loaded);
    if refused.is_empty() {
        Ok(loaded)
    } else {
        Err(ManagerError::Refused(hide(SpecErrors(refused))))
    }
}

/// Spec checks that run at once.
pub const CHECKS_AT_ONCE: usize = 2;
/// The longest a spec check may take (each plugin's `init` has its own call timeout too).
pub const CHECK_DEADLINE: Duration = Duration::from_secs(120);

impl Manager {
    /// Resolves the plugins of `loaded` and checks every schema, off the async threads, at
    /// most [`CHECKS_AT_ONCE`] at a time and within [`CHECK_DEADLINE`]. Holds no lock.
    pub(super) async fn check(&self, loaded: &Loaded) -> Result<(), SpecErrors> {
        let failed = |message: String| SpecErrors(vec![SpecError::at(&loaded.file, 0, 0, message)]);
        let slot = self
            .inner
            .checks
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let (host, copy) = (self.inner.host.clone(), loaded.clone());
        // The slot goes with the work: a check past its deadline still holds it until its
        // plugin calls end (each within its call timeout).
        let task = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            host.check(&copy)
        });
        match tokio::time::timeout(CHECK_DEADLINE, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(failed(format!("checking the spec failed: {e}"))),
            Err(_) => Err(failed(format!(
                "checking the spec took over {} s (its plugins' `init` calls); the spec is not \
                 applied",
                CHECK_DEADLINE.as_secs()
            ))),
        }
    }

    /// Parses and fully validates spec text.
    pub(super) async fn validated(&self, origin: &str, text: &str) -> Result<Loaded, SpecErrors> {
        let loaded = parse(origin, text)?;
        self.check(&loaded).await?;
        Ok(loaded)
    }

    fn name_of_file(&self, path: &Path) -> Option<String> {
        self.entries()
            .iter()
            .find(|(_, e)| e.file == path)
            .map(|(n, _)| n.clone())
    }

    /// Writes `text` to `<folder>/<name>.yaml` (or the existing file of `name`) and notes
    /// its hash so that the watcher does not apply it a second time.
    fn write_spec(
        &self,
        name: &str,
        text: &str,
    ) -> Result<(std::path::PathBuf, String), ManagerError> {
        let file = self
            .entries()
            .get(name)
            .map(|e| e.file.clone())
            .unwrap_or_else(|| self.inner.folder.join(format!("{name}.yaml")));
        if let Some(other) = self.name_of_file(&file).filter(|n| n != name) {
            return Err(ManagerError::Conflict(format!(
                "The file `{}` already holds pipeline `{other}`.",
                file.display()
            )));
        }
        let hash = files::hash(text);
        self.inner
            .seen
            .lock()
            .expect("seen lock")
            .insert(file.clone(), hash.clone());
        files::write_atomic(&file, text)?;
        Ok((file, hash))
    }

    /// `POST`: creates and starts a pipeline from spec text (YAML); 409 if its name exists.
    pub async fn create(&self, text: &str) -> Result<Detail, ManagerError> {
        let loaded = parse_untrusted(&self.inner.host.api_policy, text)?;
        let name = loaded.spec.name.clone();
        if self.entries().contains_key(&name) {
            return Err(ManagerError::Exists(name));
        }
        self.check(&loaded).await.map_err(ManagerError::Invalid)?;
        let ops = self.inner.ops.lock().await;
        // Another call may have created it while this one was checked.
        if self.entries().contains_key(&name) {
            return Err(ManagerError::Exists(name));
        }
        self.add(&name, text, loaded)?;
        drop(ops);
        self.share(&name, Some(text)).await;
        self.detail(&name).await
    }

    fn add(&self, name: &str, text: &str, loaded: Loaded) -> Result<(), ManagerError> {
        let (file, hash) = self.write_spec(name, text)?;
        tracing::info!(pipeline = name, file = %file.display(), "A pipeline was created through the API.");
        let entry = Entry::new(file, text.to_owned(), hash, Some(loaded));
        self.entries().insert(name.to_owned(), entry);
        self.start_run(name, None);
        Ok(())
    }

    /// `PUT`: creates or replaces `name`; returns the pipeline and whether it was created.
    pub async fn put(&self, name: &str, text: &str) -> Result<(Detail, bool), ManagerError> {
        let loaded = parse_untrusted(&self.inner.host.api_policy, text)?;
        if loaded.spec.name != name {
            return Err(ManagerError::NameMismatch {
                url: name.to_owned(),
                body: loaded.spec.name.clone(),
            });
        }
        self.check(&loaded).await.map_err(ManagerError::Invalid)?;
        let ops = self.inner.ops.lock().await;
        let created = !self.entries().contains_key(name);
        if created {
            self.add(name, text, loaded)?;
        } else {
            let (_, hash) = self.write_spec(name, text)?;
            tracing::info!(
                pipeline = name,
                "The pipeline's spec was replaced through the API."
            );
            self.replace(name, loaded, text, hash).await;
        }
        drop(ops);
        self.share(name, Some(text)).await;
        Ok((self.detail(name).await?, created))
    }

    /// Puts `loaded` in force: in the running chain when only the steps changed (see
    /// [`super::switch`]), else by stopping the old run of `name` and starting it again
    /// (unless the pipeline is paused: it then stays paused with the new spec).
    async fn replace(&self, name: &str, loaded: Loaded, raw: &str, hash: String) {
        let (held, state) = self
            .with(name, |e| (e.held, e.state))
            .unwrap_or((false, State::Stopped));
        let restart = if self.switch_in_place(name, &loaded, raw).await {
            None
        } else {
            // A held pipeline keeps the state it was held in (paused, or stopped).
            let state = if held { state } else { State::Stopped };
            let last = self.stop_run(name, state).await;
            self.with(name, |e| e.held = held);
            Some(last)
        };
        self.with(name, |e| {
            e.loaded = Some(loaded);
            e.raw = raw.to_owned();
            e.hash = hash;
            e.spec_errors.clear();
        });
        if let Some(last) = restart.filter(|_| !held) {
            self.start_run(name, Some(last));
        }
    }

    /// `DELETE`: stops `name`, forgets it and removes its file.
    pub async fn delete(&self, name: &str) -> Result<(), ManagerError> {
        let _ops = self.inner.ops.lock().await;
        if !self.entries().contains_key(name) {
            return Err(ManagerError::NotFound(name.to_owned()));
        }
        self.end_shadow(name).await;
        self.stop_run(name, State::Stopped).await;
        let removed = self.entries().remove(name);
        if let Some(entry) = removed {
            self.inner
                .seen
                .lock()
                .expect("seen lock")
                .remove(&entry.file);
            files::remove(&entry.file)?;
            tracing::info!(pipeline = name, file = %entry.file.display(), "The pipeline was deleted.");
        }
        self.share(name, None).await;
        Ok(())
    }

    /// Shares an API change of `name` (its new text, or `None`: deleted) with the other hosts
    /// of the cluster, if this host is in one. The change is in force here either way; a
    /// failure is logged (the other hosts keep the previous version).
    async fn share(&self, name: &str, text: Option<&str>) {
        let Some(cluster) = self.cluster() else {
            return;
        };
        let shared = match text {
            Some(text) => cluster.publish_spec(name, text).await,
            None => cluster.delete_spec(name).await,
        };
        if let Err(error) = shared {
            tracing::warn!(pipeline = name, error = %format!("{error:#}"),
                "The change is in force on this host but could not be shared with the cluster.");
        }
    }

    fn exists(&self, name: &str) -> Result<(), ManagerError> {
        match self.entries().get(name) {
            Some(e) if e.loaded.is_none() => Err(ManagerError::Conflict(format!(
                "Pipeline `{name}` has no valid spec yet; fix its file `{}` first.",
                e.file.display()
            ))),
            Some(_) => Ok(()),
            None => Err(ManagerError::NotFound(name.to_owned())),
        }
    }

    /// Stops consuming (final flush, commit and checkpoint); the pipeline stays paused, also
    /// across spec changes, until resumed or restarted.
    pub async fn pause(&self, name: &str) -> Result<StatusView, ManagerError> {
        {
            let _ops = self.inner.ops.lock().await;
            self.exists(name)?;
            self.stop_run(name, State::Paused).await;
            tracing::info!(pipeline = name, "The pipeline is paused.");
        }
        self.status(name).await
    }

    /// Stops consuming like [`Manager::pause`], but the pipeline is `stopped` (Kafka Connect's
    /// STOPPED, KIP-875: its offsets may then be changed); it stays stopped, also across spec
    /// changes, until resumed or restarted.
    pub async fn stop(&self, name: &str) -> Result<StatusView, ManagerError> {
        {
            let _ops = self.inner.ops.lock().await;
            self.exists(name)?;
            self.stop_run(name, State::Stopped).await;
            self.with(name, |e| {
                e.state = State::Stopped;
                e.held = true;
            });
            tracing::info!(pipeline = name, "The pipeline is stopped.");
        }
        self.status(name).await
    }

    /// Starts a paused (or stopped, failed, finished) pipeline again from where it stopped;
    /// a running pipeline is left as it is.
    pub async fn resume(&self, name: &str) -> Result<StatusView, ManagerError> {
        {
            let _ops = self.inner.ops.lock().await;
            self.exists(name)?;
            let active = self.with(name, |e| {
                matches!(e.state, State::Running | State::Starting) && e.run.is_some()
            });
            if active != Some(true) {
                // A resume follows a pause a user chose: no switch pause to measure.
                self.stop_run(name, State::Stopped).await;
                self.start_run(name, None);
            }
        }
        self.status(name).await
    }

    /// Stops and starts the pipeline again.
    pub async fn restart(&self, name: &str) -> Result<StatusView, ManagerError> {
        {
            let _ops = self.inner.ops.lock().await;
            self.exists(name)?;
            let last = self.stop_run(name, State::Stopped).await;
            self.start_run(name, Some(last));
        }
        self.status(name).await
    }

    /// Applies the text of a spec file of the folder (new or changed): validated, then
    /// started or put in place of the running version. A file that does not validate leaves
    /// the running version untouched; its errors are logged and kept for the API.
    pub async fn apply_file(&self, path: &Path, text: &str) {
        let hash = files::hash(text);
        if self.inner.seen.lock().expect("seen lock").get(path) == Some(&hash) {
            return;
        }
        let origin = path.display().to_string();
        let validated = self.validated(&origin, text).await;
        let _ops = self.inner.ops.lock().await;
        // The API may have written this very text while it was checked.
        let known = self
            .inner
            .seen
            .lock()
            .expect("seen lock")
            .insert(path.to_owned(), hash.clone());
        if known.as_ref() == Some(&hash) {
            return;
        }
        match validated {
            Ok(loaded) => self.apply_valid(path, text, hash, loaded).await,
            Err(errors) => self.refuse_file(path, text, hash, errors),
        }
    }

    async fn apply_valid(&self, path: &Path, text: &str, hash: String, loaded: Loaded) {
        let name = loaded.spec.name.clone();
        if let Some(old) = self.name_of_file(path).filter(|old| *old != name) {
            self.stop_run(&old, State::Stopped).await;
            self.entries().remove(&old);
            tracing::info!(
                pipeline = old,
                "The pipeline was renamed in its file; the old name is removed."
            );
        }
        let other = self.entries().get(&name).map(|e| e.file.clone());
        match other {
            Some(file) if file != path => {
                tracing::error!(pipeline = name, file = %path.display(), other = %file.display(),
                    "The spec file names a pipeline another file already defines; it is ignored.");
            }
            Some(_) => {
                tracing::info!(pipeline = name, file = %path.display(), "The spec file changed; replacing the pipeline.");
                self.replace(&name, loaded, text, hash).await;
            }
            None => {
                tracing::info!(pipeline = name, file = %path.display(), "Starting the pipeline of a new spec file.");
                let entry = Entry::new(path.to_owned(), text.to_owned(), hash, Some(loaded));
                self.entries().insert(name.clone(), entry);
                self.start_run(&name, None);
            }
        }
    }

    fn refuse_file(&self, path: &Path, text: &str, hash: String, errors: SpecErrors) {
        tracing::error!(file = %path.display(),
            "The spec file is not valid; the running version (if any) stays:\n{errors}");
        let note = Note::now(format!("The spec file is not valid: {errors}"));
        let name = self.name_of_file(path).unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
        });
        let mut entries = self.entries();
        let entry = entries.entry(name).or_insert_with(|| {
            let mut entry = Entry::new(path.to_owned(), text.to_owned(), hash, None);
            entry.state = State::Failed;
            entry
        });
        if entry.file == path {
            entry.last_error = Some(note);
            entry.spec_errors = errors.0;
        }
    }

    /// A spec file disappeared: its pipeline is stopped and removed.
    pub async fn remove_file(&self, path: &Path) {
        let _ops = self.inner.ops.lock().await;
        self.inner.seen.lock().expect("seen lock").remove(path);
        if let Some(name) = self.name_of_file(path) {
            self.end_shadow(&name).await;
            self.stop_run(&name, State::Stopped).await;
            self.entries().remove(&name);
            tracing::info!(pipeline = name, file = %path.display(), "The spec file was removed; the pipeline is stopped and removed.");
        }
    }

    /// The spec files the manager knows (applied or refused).
    pub fn known_files(&self) -> Vec<std::path::PathBuf> {
        self.inner
            .seen
            .lock()
            .expect("seen lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Stops every pipeline (each finishes its batches in flight); they stay listed.
    pub async fn shutdown(&self) {
        let _ops = self.inner.ops.lock().await;
        let names = self.names();
        for name in &names {
            self.end_shadow(name).await;
        }
        let stops = names.iter().map(|name| self.stop_run(name, State::Stopped));
        futures::future::join_all(stops).await;
    }
}

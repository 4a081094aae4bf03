//! The live status bus of a host: each pipeline's channel of typed events ([`LiveEvent`]:
//! rows, stats, connectors, state) behind the dashboard and
//! `/api/v1/pipelines/{name}/live`, and its results view ([`ResultsView`]) behind
//! `/api/v1/pipelines/{name}/results`.
//!
//! A client that connects mid-run first receives the latest state, connectors and stats
//! events and the recent rows events (bounded in count and bytes; the periodic stats never
//! push rows out), then every new event. The results view outlives the replay buffer and,
//! when the hub has a folder, a restart: [`LiveHub::save`] writes it there.

pub mod diff;
pub mod event;
pub mod view;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

pub use event::{ConnectorsEvent, LiveEvent, RowsEvent, RunState, StateEvent, StatsEvent};
pub use view::{ResultsSnapshot, ResultsView};

/// The replayed events of a new subscriber and a receiver for the next ones.
pub type Subscription = (Vec<Arc<str>>, broadcast::Receiver<Arc<str>>);

/// Rows events kept for clients that connect later: at most this many...
const RECENT: usize = 256;
/// ...and at most this many bytes of them (the newest is always kept): a rows event of the
/// turnstile pipeline is ~50 KB, so this holds the last ~40 windows.
const RECENT_BYTES: usize = 2 << 20;

/// One pipeline's live channel.
struct Channel {
    tx: broadcast::Sender<Arc<str>>,
    /// Recent rows events, as sent.
    recent: VecDeque<Arc<str>>,
    /// Bytes in `recent`.
    recent_bytes: usize,
    /// The latest event of each other type, as sent.
    state: Option<Arc<str>>,
    connectors: Option<(ConnectorsEvent, Arc<str>)>,
    stats: Option<(StatsEvent, Arc<str>)>,
    view: ResultsView,
}

impl Channel {
    fn new(view: ResultsView) -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            recent: VecDeque::new(),
            recent_bytes: 0,
            state: None,
            connectors: None,
            stats: None,
            view,
        }
    }

    fn push_rows(&mut self, text: Arc<str>) {
        self.recent_bytes += text.len();
        self.recent.push_back(text);
        while self.recent.len() > RECENT
            || (self.recent_bytes > RECENT_BYTES && self.recent.len() > 1)
        {
            if let Some(old) = self.recent.pop_front() {
                self.recent_bytes -= old.len();
            }
        }
    }
}

/// Live event channels of every pipeline of the host.
#[derive(Clone, Default)]
pub struct LiveHub {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// Where results views are saved (`<state>/live`); none keeps them in memory only.
    dir: Option<PathBuf>,
}

impl LiveHub {
    /// A hub that saves results views under `dir` and loads them back.
    pub fn with_dir(dir: PathBuf) -> Self {
        Self {
            channels: Default::default(),
            dir: Some(dir),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Channel>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn channel<'a>(
        &self,
        channels: &'a mut HashMap<String, Channel>,
        pipeline: &str,
    ) -> &'a mut Channel {
        channels
            .entry(pipeline.to_owned())
            .or_insert_with(|| Channel::new(self.load(pipeline)))
    }

    /// Publishes `event` on `pipeline`'s channel. Events other than rows have their
    /// credentials masked.
    pub fn publish(&self, pipeline: &str, event: LiveEvent) {
        let text: Arc<str> = match &event {
            LiveEvent::Rows(_) => serde_json::to_string(&event),
            _ => serde_json::to_value(&event).and_then(|mut json| {
                crate::redact::json(&mut json);
                serde_json::to_string(&json)
            }),
        }
        .unwrap_or_default()
        .into();
        let mut channels = self.lock();
        let channel = self.channel(&mut channels, pipeline);
        let _ = channel.tx.send(text.clone());
        match event {
            LiveEvent::Rows(rows) => {
                channel.view.apply(&rows);
                channel.push_rows(text);
            }
            LiveEvent::Stats(stats) => channel.stats = Some((stats, text)),
            LiveEvent::Connectors(c) => channel.connectors = Some((c, text)),
            LiveEvent::State(_) => channel.state = Some(text),
        }
    }

    /// The latest connectors event of `pipeline`.
    pub fn connectors(&self, pipeline: &str) -> Option<ConnectorsEvent> {
        let channels = self.lock();
        Some(channels.get(pipeline)?.connectors.as_ref()?.0.clone())
    }

    /// The latest stats event of `pipeline`.
    pub fn stats(&self, pipeline: &str) -> Option<StatsEvent> {
        let channels = self.lock();
        Some(channels.get(pipeline)?.stats.as_ref()?.0.clone())
    }

    /// Declares a pipeline (so that subscribing before its first event works) and loads its
    /// saved results view.
    pub fn register(&self, pipeline: &str) {
        let mut channels = self.lock();
        self.channel(&mut channels, pipeline);
    }

    /// The replayed events and a receiver for the next ones; `None` for an unknown pipeline.
    pub fn subscribe(&self, pipeline: &str) -> Option<Subscription> {
        let channels = self.lock();
        let channel = channels.get(pipeline)?;
        let latest = [
            &channel.state,
            &channel.connectors.as_ref().map(|c| c.1.clone()),
        ];
        let mut replay: Vec<Arc<str>> = latest.into_iter().flatten().cloned().collect();
        replay.extend(channel.stats.as_ref().map(|s| s.1.clone()));
        replay.extend(channel.recent.iter().cloned());
        Some((replay, channel.tx.subscribe()))
    }

    /// The results view of `pipeline` (see [`ResultsView::snapshot`]); `None` for an
    /// unknown pipeline.
    pub fn results(&self, pipeline: &str, top: usize, windows: usize) -> Option<ResultsSnapshot> {
        let channels = self.lock();
        Some(channels.get(pipeline)?.view.snapshot(top, windows))
    }

    /// The rows of `candidate`'s results view compared with `baseline`'s (shadow runs); the
    /// first `first` differing windows in full. A pipeline without a channel has no rows.
    pub fn diff(&self, baseline: &str, candidate: &str, first: usize) -> diff::ViewDiff {
        let channels = self.lock();
        let empty = ResultsView::default();
        let view = |name: &str| channels.get(name).map_or(&empty, |c| &c.view);
        diff::diff(view(baseline), view(candidate), first)
    }

    /// Drops `pipeline`'s channel and its saved view (a shadow run that ended). Open live
    /// connections to it end.
    pub fn forget(&self, pipeline: &str) {
        self.lock().remove(pipeline);
        if let Some(path) = self.path(pipeline) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Names of the pipelines with a channel, sorted.
    pub fn pipelines(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().keys().cloned().collect();
        names.sort();
        names
    }

    /// Forgets `pipeline`'s results (a pipeline started over from no checkpoint) and its
    /// saved view.
    pub fn clear_results(&self, pipeline: &str) {
        let mut channels = self.lock();
        let channel = self.channel(&mut channels, pipeline);
        channel.view = ResultsView::default();
        channel.recent.clear();
        channel.recent_bytes = 0;
        if let Some(path) = self.path(pipeline) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Saves `pipeline`'s results view if it changed since it was last saved. A failure is
    /// logged: the view is a convenience, the sinks hold the results.
    pub fn save(&self, pipeline: &str) {
        let Some(path) = self.path(pipeline) else {
            return;
        };
        let text = {
            let mut channels = self.lock();
            let Some(channel) = channels.get_mut(pipeline).filter(|c| c.view.dirty) else {
                return;
            };
            channel.view.dirty = false;
            serde_json::to_vec(&channel.view)
        };
        let written = text.map_err(std::io::Error::other).and_then(|bytes| {
            let tmp = path.with_extension("json.tmp");
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        });
        if let Err(error) = written {
            tracing::warn!(pipeline, path = %path.display(), %error,
                "Cannot save the pipeline's results view for the dashboard.");
        }
    }

    /// `<dir>/<pipeline>.json`.
    fn path(&self, pipeline: &str) -> Option<PathBuf> {
        let safe: String = pipeline
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Some(self.dir.as_ref()?.join(format!("{safe}.json")))
    }

    /// The saved view of `pipeline`, empty when there is none or it cannot be read.
    fn load(&self, pipeline: &str) -> ResultsView {
        let Some(path) = self.path(pipeline) else {
            return ResultsView::default();
        };
        let Ok(bytes) = std::fs::read(&path) else {
            return ResultsView::default();
        };
        serde_json::from_slice(&bytes).unwrap_or_else(|error| {
            tracing::warn!(path = %path.display(), %error,
                "Ignoring an unreadable saved results view.");
            ResultsView::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value as Json, json};

    /// A JSON object's fields (for events built from `serde_json::json!`).
    fn object(json: Json) -> serde_json::Map<String, Json> {
        match json {
            Json::Object(map) => map,
            _ => Default::default(),
        }
    }

    fn rows_event(i: usize, pad: &str) -> LiveEvent {
        let row = object(json!({ "station": "A", "window_start": format!("{i:05}"), "pad": pad }));
        LiveEvent::Rows(RowsEvent {
            is_final: true,
            rows: vec![row],
            key: Some("station".into()),
        })
    }

    #[test]
    fn the_replayed_history_is_bounded_and_stats_do_not_push_rows_out() {
        let hub = LiveHub::default();
        let big = "x".repeat(100_000);
        for i in 0..100 {
            hub.publish("p", rows_event(i, &big));
        }
        let (recent, _) = hub.subscribe("p").unwrap();
        let bytes: usize = recent.iter().map(|e| e.len()).sum();
        assert!(bytes <= RECENT_BYTES, "{bytes} bytes kept");
        assert!(recent.len() > 1 && recent.len() < 100, "{}", recent.len());
        assert!(
            recent.last().unwrap().contains("\"00099\""),
            "the newest is kept"
        );
        let rows_kept = recent.len();
        for i in 0..300 {
            let stats = StatsEvent {
                records_in: i,
                ..Default::default()
            };
            hub.publish("p", LiveEvent::Stats(stats));
        }
        let (recent, _) = hub.subscribe("p").unwrap();
        assert_eq!(recent.len(), rows_kept + 1, "one stats event, the latest");
        assert!(recent[0].contains("\"records_in\":299"), "{}", recent[0]);
        assert_eq!(hub.stats("p").unwrap().records_in, 299);
        hub.publish("p", rows_event(100, &"y".repeat(RECENT_BYTES + 1)));
        assert_eq!(
            hub.subscribe("p").unwrap().0.len(),
            2,
            "one rows event over the cap"
        );
        assert_eq!(hub.results("p", 1, 1000).unwrap().events[0].rows.len(), 90);
    }

    #[test]
    fn the_results_view_survives_a_new_hub_on_the_same_folder() {
        let dir = tempfile::tempdir().unwrap();
        let hub = LiveHub::with_dir(dir.path().join("live"));
        hub.publish("turnstile", rows_event(1, ""));
        hub.save("turnstile");
        let again = LiveHub::with_dir(dir.path().join("live"));
        again.register("turnstile");
        let snap = again.results("turnstile", 5, 60).unwrap();
        assert_eq!(snap.events[0].rows[0]["window_start"], "00001");
        again.clear_results("turnstile");
        assert!(!dir.path().join("live/turnstile.json").exists());
        assert_eq!(again.results("turnstile", 5, 60).unwrap().keys, 0);
    }
}

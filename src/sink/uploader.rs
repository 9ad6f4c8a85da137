//! The sink's one task: takes the store's events, asks the [`Plan`] what to do, and runs each
//! put or delete as its own task, `concurrency` at a time. A failed put is retried with
//! backoff until it succeeds or its file leaves the window; nothing here ever blocks the
//! pipeline (the store's events arrive through an unbounded channel that this task drains
//! whatever the uploads do, and the plan holds no more than the window).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use super::backend::Backend;
use super::health::{Recovery, SinkHealth};
use super::plan::{Job, Object, Plan, Putting};
use crate::store::StoreEvent;

/// The first retry waits this long, each next one twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Deletes are tidying: a few tries, then the object is left (a lifecycle rule may take it).
const DELETE_TRIES: u32 = 3;

/// How a put ended, reported to the task that owns the plan.
enum Done {
    Stored {
        putting: Putting,
        url: Option<String>,
        recovery: Recovery,
    },
    Abandoned(Putting),
}

/// Runs the sink until the store goes away.
pub async fn run(
    backend: Backend,
    concurrency: usize,
    mut events: UnboundedReceiver<StoreEvent>,
    health: Arc<SinkHealth>,
) {
    let backend = Arc::new(backend);
    match backend.check().await {
        Ok(()) => info!(target = %backend.target(), "storage: ready"),
        Err(e) => {
            health.failed(&e.0);
            warn!(
                target = %backend.target(),
                "storage: {e}. Viewers are served by selfcast until uploads succeed."
            );
        }
    }
    let (done_sender, mut done) = unbounded_channel();
    let workers = Workers {
        backend,
        permits: Arc::new(Semaphore::new(concurrency)),
        health: Arc::clone(&health),
        done: done_sender,
    };
    let mut plan = Plan::default();
    loop {
        let jobs = tokio::select! {
            event = events.recv() => match event {
                Some(event) => plan.on_event(event),
                None => break,
            },
            Some(result) = done.recv() => match result {
                Done::Stored { putting, url, recovery } => {
                    let (mut jobs, listed) = plan.stored(putting, url, Instant::now());
                    health.listed(&listed);
                    if recovery == Recovery::Recovered {
                        info!("storage: uploads work again; putting the live window again");
                        jobs.extend(plan.resync());
                    }
                    jobs
                }
                Done::Abandoned(putting) => plan.abandoned(putting),
            },
        };
        for job in jobs {
            workers.start(job);
        }
        health.set_progress(plan.backlog(), plan.master_stored(), plan.settled());
    }
}

/// What every job task needs.
struct Workers {
    backend: Arc<Backend>,
    permits: Arc<Semaphore>,
    health: Arc<SinkHealth>,
    done: UnboundedSender<Done>,
}

impl Workers {
    fn start(&self, job: Job) {
        let backend = Arc::clone(&self.backend);
        let permits = Arc::clone(&self.permits);
        let health = Arc::clone(&self.health);
        match job {
            Job::Put {
                object,
                putting,
                cancel,
            } => {
                let done = self.done.clone();
                let timed = matches!(putting, Putting::File { .. });
                tokio::spawn(async move {
                    let put =
                        put_until_stored(&backend, &permits, &health, &object, timed, &cancel);
                    let result = match put.await {
                        Some((url, recovery)) => Done::Stored {
                            putting,
                            url,
                            recovery,
                        },
                        None => Done::Abandoned(putting),
                    };
                    let _ = done.send(result);
                });
            }
            Job::Delete { key } => {
                tokio::spawn(async move {
                    for attempt in 1..=DELETE_TRIES {
                        let result = {
                            let _permit = permits.acquire().await;
                            backend.delete(&key).await
                        };
                        match result {
                            Ok(()) => return health.deleted(),
                            Err(e) if attempt == DELETE_TRIES => {
                                warn!(key, "storage: {e}; left in place")
                            }
                            Err(_) => tokio::time::sleep(FIRST_BACKOFF * attempt).await,
                        }
                    }
                });
            }
        }
    }
}

/// Puts `object` until it is stored (`Some`: its URL, and whether this ended an outage) or
/// `cancel` is set (`None`). With `timed`, how long the put took goes into `putMs`.
async fn put_until_stored(
    backend: &Backend,
    permits: &Semaphore,
    health: &SinkHealth,
    object: &Object,
    timed: bool,
    cancel: &AtomicBool,
) -> Option<(Option<String>, Recovery)> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        let result = {
            let _permit = permits.acquire().await;
            let started = Instant::now();
            backend
                .put(object)
                .await
                .map(|url| (url, started.elapsed()))
        };
        match result {
            Ok((url, took)) => return Some((url, health.stored(timed.then_some(took)))),
            Err(e) => {
                if let Some(suppressed) = health.failed(&e.0) {
                    warn!(
                        suppressed,
                        "storage: {e}; retrying (selfcast serves viewers meanwhile)"
                    );
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

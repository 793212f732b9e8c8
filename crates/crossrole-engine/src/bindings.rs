//! Access bindings and the reconcile loop: specs crossroled keeps true over time.
//!
//! A binding is a named, versioned spec with a mode and an interval, kept in the journal (a [`BindingRecord`],
//! its ExternalId sealed). The schedule (a loop of [`crate::runtime`]) wakes on every change and at least every tick; each due
//! binding gets a RECONCILE operation through the same engine, journal, concurrency, failure tolerance and rate
//! limits as an apply (in DETECT mode, a dry run). A binding never reconciles twice at once: its unfinished
//! operation, found in the journal, is waited for instead — also after a restart, when the engine resumes it, and
//! across replicas, where the journal starts one reconcile of a binding however many ask at the same instant and
//! gives the others that one. When an operation ends, its per-account results become the binding's status
//! ([`BindingStatus::from_results`]), and the next reconcile is due one interval later, with up to 10% jitter so
//! that bindings created together do not fire together.
//!
//! Deleting a binding ([`Bindings::delete`]) cancels its unfinished reconcile, wherever it runs, and a binding's
//! operations take turns (`rollout::turn`): the destroy of its spec begins only once that reconcile has ended in the
//! journal, and a reconcile started as the binding was deleted does nothing. So nothing a reconcile of the binding
//! writes — a role, the grant at its end — outlives the destroy.
//!
//! A binding may carry an end (`expires_at`). At its end, the schedule — on whichever replica runs it, within its
//! tick — starts a DESTROY of the binding's spec ([`Bindings::pass`]): its roles, their trust and the trusted side's
//! grant go. The end is in the binding's record, so it survives restarts and a replica's death; the destroy is
//! started under an idempotency key of the binding's name and version, so the journal starts it once however many
//! replicas (or passes) ask, and the binding's status names it. An expired binding is kept, not reconciled (a
//! reconcile whose turn comes after the end does nothing); an update with an end ahead, or with none, grants its
//! access again.
//!
//! Accounts an AWS Organizations event names ([`Bindings::reconcile_accounts`]) get a reconcile of just them in each binding
//! whose spec concerns them, at once or when the binding's running reconcile ends; its result replaces only those
//! accounts' states, and the next full reconcile stays due when it was. Until a reconcile has had them, they wait
//! in the journal (not in the memory of the replica that read the event), so they are reconciled whichever replica
//! runs the schedule by then; those a reconcile could not reconcile are tried again, [`EVENT_ATTEMPTS`] times in
//! all, and then left to the binding's next full reconcile.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use crossrole_core::{
    AccessSpec,
    binding::{Binding, BindingMode, BindingStatus, BindingView, RawBinding},
    ops::{AccountResult, Millis, Operation, OperationKind, OperationState, Outcome},
    secret::Redactor,
    spec::RawSpec,
    unreadable::{Listed, ListedBinding, UnreadableBinding},
};
use crossrole_store::{BindingRow, WaitingAccount};
use rand::Rng;
use tokio::sync::{Mutex, Notify};

use crate::{
    Engine, Error, ListFilter, StartRequest,
    pages::Listing,
    records::{self, BindingRecord},
    secrets,
};

/// How many reconciles an account an Organizations event named gets at most, when they fail (the binding's next
/// full reconcile catches up after that).
pub const EVENT_ATTEMPTS: u32 = 3;

/// Who starts the destroy at a binding's end (its operation's `created_by`).
pub const EXPIRY: &str = "expiry";

/// How long after a failed reconcile of accounts an event named they are tried again, unless set otherwise
/// ([`Bindings::retrying_after`]).
pub const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The context a binding's sealed values are bound to.
fn seal_context(name: &str) -> String {
    format!("binding:{name}")
}

/// A refusal of a binding's spec (guardrails, ceiling), its fields named under `binding.spec.`.
fn under_binding(e: Error) -> Error {
    match e {
        Error::Invalid(e) => Error::Invalid(e.under("binding.spec")),
        other => other,
    }
}

/// The bindings and their reconcile loop. Cheap to clone.
#[derive(Clone)]
pub struct Bindings {
    engine: Engine,
    /// Binding → its running reconcile operation.
    running: Arc<Mutex<HashMap<String, String>>>,
    wake: Arc<Notify>,
    /// How long after a failed reconcile of accounts an event named they are tried again.
    retry_after: Duration,
}

impl Bindings {
    /// The bindings of `engine`'s journal.
    pub fn new(engine: Engine) -> Bindings {
        Bindings { engine, running: Default::default(), wake: Arc::new(Notify::new()), retry_after: RETRY_AFTER }
    }

    /// The same bindings, trying accounts an event named again `delay` after a reconcile of them failed.
    pub fn retrying_after(mut self, delay: Duration) -> Bindings {
        self.retry_after = delay;
        self
    }

    /// Creates a binding: validated, checked against the ceiling and the guardrails, then reconciled at once.
    pub async fn create(&self, raw: &RawBinding) -> Result<BindingView, Error> {
        let binding = self.checked(raw).await?;
        let now = self.engine.now();
        let row = BindingRow {
            name: binding.name.clone(),
            version: 1,
            binding: self.record(&binding)?,
            status: Vec::new(),
            create_time: now,
            update_time: now,
        };
        if !self.engine.journal().create_binding(row).await? {
            return Err(Error::FailedPrecondition(format!(
                "binding {} already exists; update it instead",
                binding.name
            )));
        }
        self.wake.notify_one();
        self.get(&binding.name).await
    }

    /// Replaces a binding (when it is still at `expected_version`, if given). An ExternalId sent back as the mark
    /// it was shown as means "unchanged".
    pub async fn update(&self, raw: &RawBinding, expected_version: Option<u64>) -> Result<BindingView, Error> {
        Ok(self.update_ending(raw, expected_version).await?.1)
    }

    /// [`Bindings::update`], and the end the binding had before (for the audit log: an extension names both).
    /// An update of an expired binding with an end ahead, or with none, grants its access again.
    pub async fn update_ending(
        &self,
        raw: &RawBinding,
        expected_version: Option<u64>,
    ) -> Result<(Option<Millis>, BindingView), Error> {
        let mut raw = raw.clone();
        let name = if raw.name.is_empty() {
            raw.spec.as_ref().map(|s| s.name.clone()).unwrap_or_default()
        } else {
            raw.name.clone()
        };
        let current = self.row(&name).await?;
        let stored = self.decode(&current)?;
        let previous_end = stored.expires_at;
        if let Some(e) = external_id(raw.spec.as_mut())
            && Redactor::is_mark(e)
        {
            *e = stored.spec.role.and_then(|r| r.trust).map(|t| t.external_id).unwrap_or_default();
        }
        let binding = self.checked(&raw).await?;
        let row = self
            .engine
            .journal()
            .update_binding(&binding.name, self.record(&binding)?, expected_version, self.engine.now())
            .await?
            .ok_or_else(|| Error::NotFound(format!("binding {}", binding.name)))?;
        // The end it had is no longer the binding's: the schedule acts on the new one (or on none).
        let mut row = row;
        let mut status = self.status(&row);
        if !status.expiry_operation_id.is_empty() {
            status.expiry_operation_id.clear();
            row.status = records::encode(&status);
            self.engine.journal().set_binding_status(&row.name, row.status.clone()).await?;
        }
        self.wake.notify_one();
        Ok((previous_end, self.view(&row, true)?))
    }

    /// A binding, with its status.
    pub async fn get(&self, name: &str) -> Result<BindingView, Error> {
        self.view(&self.row(name).await?, true)
    }

    /// Bindings by name, a page after `token` (empty: the first), their status without the accounts; a binding
    /// that cannot be read is shown with why. The next page's token, empty at the end.
    pub async fn list(&self, page_size: usize, token: &str) -> Result<(Vec<ListedBinding>, String), Error> {
        let after = self.engine.pages().read(Listing::Bindings, token)?;
        let mut rows = self.engine.journal().list_bindings(page_size + 1, after.as_deref()).await?;
        let next = if rows.len() > page_size {
            rows.truncate(page_size);
            rows.last().map(|r| self.engine.pages().issue(Listing::Bindings, &r.name)).unwrap_or_default()
        } else {
            String::new()
        };
        let views = rows.iter().map(|r| self.listed(r)).collect::<Result<_, _>>()?;
        Ok((views, next))
    }

    /// A binding in a listing: its view, or, when its record cannot be read, what its row says and why.
    fn listed(&self, row: &BindingRow) -> Result<ListedBinding, Error> {
        match self.view(row, false) {
            Ok(view) => Ok(Listed::Read(view)),
            Err(Error::Corrupt(reason)) => {
                tracing::warn!(binding = row.name, %reason, "a binding in a listing cannot be read");
                Ok(Listed::Unreadable(UnreadableBinding {
                    name: row.name.clone(),
                    version: row.version,
                    create_time: row.create_time,
                    update_time: row.update_time,
                    reason,
                }))
            }
            Err(other) => Err(other),
        }
    }

    /// Deletes a binding; unless `keep_roles`, a DESTROY of its spec is started first and returned. The binding's
    /// unfinished reconcile is cancelled, wherever it runs, and the destroy starts its work only once that reconcile
    /// has ended (a binding's operations take turns: `rollout::turn`), so nothing the reconcile does outlives the
    /// destroy.
    pub async fn delete(&self, name: &str, keep_roles: bool, created_by: &str) -> Result<Option<Operation>, Error> {
        let row = self.row(name).await?;
        let mut operation = None;
        if !keep_roles {
            let spec = self.spec(&row)?;
            operation = Some(
                self.engine
                    .start(StartRequest {
                        binding_name: Some(name.to_string()),
                        ..StartRequest::new(OperationKind::Destroy, spec, created_by)
                    })
                    .await?,
            );
        }
        self.engine.journal().delete_binding(name).await?;
        self.cancel_reconciles(name).await;
        Ok(operation)
    }

    /// Asks the unfinished reconciles of the deleted binding `name` to cancel, on whichever replica runs them. One
    /// that cannot be asked now is asked again by the binding's destroy, which waits for its end in any case.
    async fn cancel_reconciles(&self, name: &str) {
        let filter = ListFilter {
            states: OperationState::ALL.into_iter().filter(|s| !s.is_final()).collect(),
            binding_name: name.to_string(),
            ..Default::default()
        };
        let ops = match self.engine.list_operations(&filter, 100, "").await {
            Ok((ops, _)) => ops,
            Err(e) => {
                tracing::warn!(binding = name, error = %e, "cannot find the deleted binding's reconciles to cancel");
                return;
            }
        };
        let reconciles = ops.into_iter().filter_map(|o| {
            let (kind, end, id) = match o {
                Listed::Read(o) => (o.kind, o.end_time, o.id),
                Listed::Unreadable(o) => (o.kind, o.end_time, o.id),
            };
            (kind == Some(OperationKind::Reconcile) && end.is_none()).then_some(id)
        });
        for id in reconciles {
            match self.engine.cancel(&id).await {
                Ok(_) => tracing::info!(binding = name, operation = id, "cancelled the deleted binding's reconcile"),
                // It ended meanwhile.
                Err(Error::FailedPrecondition(_)) => {}
                Err(e) => tracing::warn!(binding = name, operation = id, error = %e, "cannot cancel a reconcile"),
            }
        }
    }

    /// Starts a reconcile of `name` now, or returns the one running (on any replica). An expired binding is not
    /// reconciled (FAILED_PRECONDITION): its access ended.
    pub async fn reconcile(&self, name: &str, created_by: &str) -> Result<Operation, Error> {
        if let Some(id) = self.running_operation(name).await {
            self.follow(name.to_string(), id.clone()).await;
            return self.engine.operation(&id).await;
        }
        let row = self.row(name).await?;
        if let Some(end) = self.ended(&row)? {
            return Err(Error::FailedPrecondition(format!(
                "binding {name} expired at {}; update it with a new end to grant its access again",
                crossrole_core::expiry::rfc3339(end)
            )));
        }
        // It covers the accounts events named that wait for the binding too.
        let waiting = match self.waiting().await {
            Ok(mut all) => all.remove(name).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(binding = name, error = %e, "cannot read the accounts waiting for the binding");
                Vec::new()
            }
        };
        let covers: Vec<String> = waiting.into_iter().map(|w| w.account_id).collect();
        Ok(self.start_reconcile(&row, None, created_by, &covers).await?.0)
    }

    /// Enrols `accounts` (named by Organizations events, and read again into discovery's tree: see
    /// `Discovery::learn`) into every binding whose spec concerns them (selects them, or was applied there): each
    /// such binding gets a reconcile of just those accounts, now, or once its running reconcile ends. They wait in
    /// the journal until a reconcile has had them. Returns the operations started now; an error when they could not
    /// be made to wait (the event is to be handled again).
    pub async fn reconcile_accounts(
        &self,
        accounts: &BTreeSet<String>,
        created_by: &str,
    ) -> Result<Vec<Operation>, Error> {
        let mut started = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let rows = self.engine.journal().list_bindings(200, after.as_deref()).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.name.clone());
            for row in rows {
                // An expired binding's access has ended: nothing to enrol.
                if matches!(self.ended(&row), Ok(Some(_))) {
                    continue;
                }
                // One binding that cannot be read or started does not hold up the others; its periodic reconcile
                // catches up.
                let concerned = match self.spec(&row) {
                    Ok(spec) => self.concerned(&spec, accounts).await,
                    Err(e) => Err(e),
                };
                let concerned = match concerned {
                    Ok(c) if c.is_empty() => continue,
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(binding = row.name, error = %e, "cannot reconcile the accounts an event named");
                        continue;
                    }
                };
                // They wait in the journal first: whatever happens next, and on whichever replica, a reconcile has them.
                let named: Vec<String> = concerned.iter().cloned().collect();
                self.engine.journal().wait_accounts(&row.name, &named, created_by, crate::now_ms()).await?;
                if let Some(id) = self.running_operation(&row.name).await {
                    // After it ends, the schedule starts the reconcile of these accounts.
                    self.follow(row.name.clone(), id).await;
                    continue;
                }
                match self.start_reconcile(&row, Some(concerned), created_by, &named).await {
                    Ok((op, true)) => started.push(op),
                    // Another replica's reconcile of the binding started first: they wait for its end.
                    Ok((_, false)) => {}
                    Err(e) => {
                        tracing::warn!(binding = row.name, error = %e, "cannot start a reconcile of some accounts")
                    }
                }
            }
        }
        Ok(started)
    }

    /// Which of `accounts` a binding's spec concerns: those it selects or matches (in the tree discovery keeps)
    /// and those where it was applied.
    async fn concerned(&self, spec: &AccessSpec, accounts: &BTreeSet<String>) -> Result<BTreeSet<String>, Error> {
        let placements: BTreeSet<String> = self.engine.journal().placements(&spec.name).await?.into_iter().collect();
        let ctx = crossrole_aws::calls::CallContext::new();
        let (_, selection) =
            self.engine.discovery().select_within(&ctx, &spec.targets, "targets", Duration::MAX).await?;
        let matched = selection.selected.iter().map(|a| &a.id).chain(selection.skipped.iter().map(|s| &s.account.id));
        let mut concerned: BTreeSet<String> = matched.filter(|a| accounts.contains(*a)).cloned().collect();
        concerned.extend(placements.intersection(accounts).cloned());
        Ok(concerned)
    }

    /// Starts a reconcile of a binding: of every account its spec selects, or only of `accounts`; it takes the
    /// accounts events named in `covers` that wait for the binding. Returns it, and whether it started now (`false`:
    /// the binding's reconcile that another caller, on any replica, started first).
    async fn start_reconcile(
        &self,
        row: &BindingRow,
        accounts: Option<BTreeSet<String>>,
        created_by: &str,
        covers: &[String],
    ) -> Result<(Operation, bool), Error> {
        let name = row.name.as_str();
        let record = self.decode(row)?;
        let scoped = accounts.as_ref().map(BTreeSet::len);
        let (op, created) = self
            .engine
            .begin(StartRequest {
                binding_name: Some(name.to_string()),
                dry_run: record.mode == BindingMode::Detect,
                accounts,
                ..StartRequest::new(OperationKind::Reconcile, self.spec(row)?, created_by)
            })
            .await?;
        self.follow(name.to_string(), op.id.clone()).await;
        if !created {
            tracing::info!(binding = name, operation = op.id, "the binding's reconcile started elsewhere runs");
            return Ok((op, false));
        }
        let mut status = self.status(row);
        status.running_operation_id = op.id.clone();
        if let Err(e) = self.engine.journal().set_binding_status(name, records::encode(&status)).await {
            tracing::warn!(binding = name, error = %e, "cannot record the running reconcile");
        }
        if !covers.is_empty()
            && let Err(e) = self.engine.journal().take_accounts(name, covers, &op.id).await
        {
            // They keep waiting: the schedule reconciles them again once this one ends.
            tracing::warn!(binding = name, error = %e, "cannot record which waiting accounts the reconcile has");
        }
        match scoped {
            None => tracing::info!(binding = name, operation = op.id, version = row.version, "reconcile started"),
            Some(n) => {
                tracing::info!(binding = name, operation = op.id, accounts = n, "reconcile of some accounts started")
            }
        }
        Ok((op, true))
    }

    /// The accounts waiting for a reconcile, by binding.
    async fn waiting(&self) -> Result<BTreeMap<String, Vec<WaitingAccount>>, Error> {
        let mut by_binding: BTreeMap<String, Vec<WaitingAccount>> = BTreeMap::new();
        for w in self.engine.journal().waiting_accounts().await? {
            by_binding.entry(w.binding.clone()).or_default().push(w);
        }
        Ok(by_binding)
    }

    /// The engine the bindings run on.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// What wakes the schedule early: a change that makes a binding due.
    pub(crate) fn woken(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// One pass of the schedule ([`crate::runtime`]): starts a reconcile of each due binding, and of the accounts
    /// events named that wait for a binding that is not reconciling.
    /// A binding whose end has come is expired instead ([`Bindings::expire`]), and never reconciled.
    pub(crate) async fn pass(&self) -> Result<(), Error> {
        let now = self.engine.now();
        let mut waiting = self.waiting().await?;
        let mut after: Option<String> = None;
        loop {
            let rows = self.engine.journal().list_bindings(200, after.as_deref()).await?;
            if rows.is_empty() {
                return Ok(());
            }
            after = rows.last().map(|r| r.name.clone());
            for row in rows {
                match self.ended(&row) {
                    Ok(None) => {}
                    Ok(Some(end)) => {
                        if let Err(e) = self.expire(&row, end).await {
                            // Tried again at the next pass: the end stays in the journal.
                            tracing::warn!(binding = row.name, error = %e, "cannot expire the binding");
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(binding = row.name, error = %e, "cannot read the binding's end");
                        continue;
                    }
                }
                let due = self.status(&row).due(row.version, now);
                let mut waiting = waiting.remove(&row.name).unwrap_or_default();
                if !due && !waiting.iter().any(|w| w.due_at <= now) {
                    continue;
                }
                if let Some(id) = self.running_operation(&row.name).await {
                    self.follow(row.name.clone(), id).await;
                    continue;
                }
                if waiting.iter().any(|w| w.operation_id.is_some()) {
                    waiting = self.settle_taken(&row.name, &waiting).await?;
                }
                let ready: Vec<&WaitingAccount> = waiting.iter().filter(|w| w.due_at <= now).collect();
                if !due && ready.is_empty() {
                    continue;
                }
                // A full reconcile covers the accounts events named too, due or not.
                let (accounts, created_by, covers): (_, &str, Vec<String>) = if due {
                    (None, "reconciler", waiting.iter().map(|w| w.account_id.clone()).collect())
                } else {
                    let covers: Vec<String> = ready.iter().map(|w| w.account_id.clone()).collect();
                    (Some(covers.iter().cloned().collect()), &ready[0].created_by, covers)
                };
                if let Err(e) = self.start_reconcile(&row, accounts, created_by, &covers).await {
                    // Tried again at the next pass; the accounts keep waiting.
                    tracing::warn!(binding = row.name, error = %e, "cannot start a reconcile");
                }
            }
        }
    }

    /// The end of a binding, if it has come by the engine's clock.
    fn ended(&self, row: &BindingRow) -> Result<Option<Millis>, Error> {
        let record: BindingRecord = records::decode(&row.binding, &format!("binding {}", row.name))?;
        Ok(record.expires_at.filter(|end| *end <= self.engine.now()))
    }

    /// Removes the access of a binding whose end (`end`) has come: a DESTROY of its spec, started once — its
    /// idempotency key is the binding's name and version, so the journal gives every replica and every pass the
    /// same one — and named in the binding's status. Its turn comes after the binding's earlier operations, whose
    /// reconciles it asks to cancel. Like every destroy, it revokes the sessions issued before it first, unless the
    /// spec turns revocation off (`crossrole_core::revocation`).
    async fn expire(&self, row: &BindingRow, end: Millis) -> Result<(), Error> {
        let name = row.name.as_str();
        let status = self.status(row);
        if !status.expiry_operation_id.is_empty() {
            return Ok(());
        }
        let (op, created) = self
            .engine
            .begin(StartRequest {
                idempotency_key: Some(format!("expiry:{name}:{}", row.version)),
                binding_name: Some(name.to_string()),
                ..StartRequest::new(OperationKind::Destroy, self.spec(row)?, EXPIRY)
            })
            .await?;
        self.cancel_reconciles(name).await;
        // Its accounts are no longer in sync: their roles are being removed.
        let status = status.expiring(&op.id);
        self.engine.journal().set_binding_status(name, records::encode(&status)).await?;
        if created {
            tracing::info!(
                binding = name,
                operation = op.id,
                end = crossrole_core::expiry::rfc3339(end),
                "the binding's end came: its access is being removed"
            );
        }
        self.follow(name.to_string(), op.id).await;
        Ok(())
    }

    /// The running reconcile of `binding`, if any (looked up in the journal after a restart, or when another
    /// replica runs it). One with an end time has ended, whatever its state says (an older crossroled could write a
    /// cancel over an end).
    async fn running_operation(&self, binding: &str) -> Option<String> {
        if let Some(id) = self.running.lock().await.get(binding).cloned()
            && let Ok(op) = self.engine.operation(&id).await
            && !op.state.is_final()
            && op.end_time.is_none()
        {
            return Some(id);
        }
        let filter = ListFilter {
            states: OperationState::ALL.into_iter().filter(|s| !s.is_final()).collect(),
            binding_name: binding.to_string(),
            ..Default::default()
        };
        let (ops, _) = self.engine.list_operations(&filter, 10, "").await.ok()?;
        ops.into_iter().find_map(|o| match o {
            Listed::Read(o) => o.end_time.is_none().then_some(o.id),
            Listed::Unreadable(o) => o.end_time.is_none().then_some(o.id),
        })
    }

    /// Waits (in the background) for `op` to end, then records the binding's status.
    async fn follow(&self, name: String, op: String) {
        let mut running = self.running.lock().await;
        if running.get(&name) == Some(&op) {
            return;
        }
        running.insert(name.clone(), op.clone());
        drop(running);
        let this = self.clone();
        tokio::spawn(async move {
            let result = this.engine.wait(&op).await;
            this.running.lock().await.remove(&name);
            match result {
                Ok(done) => {
                    if let Err(e) = this.record_reconcile(&name, &done).await {
                        tracing::error!(binding = name, error = %e, "cannot record the reconcile's result");
                    }
                }
                Err(e) => tracing::error!(binding = name, error = %e, "lost track of a reconcile"),
            }
            this.wake.notify_one();
        });
    }

    /// Records a finished reconcile (or destroy) as the binding's status.
    async fn record_reconcile(&self, name: &str, op: &Operation) -> Result<(), Error> {
        let Some(row) = self.engine.journal().get_binding(name).await? else { return Ok(()) };
        let record = self.decode(&row)?;
        // The destroy an end started stays named until an update gives the binding a new end.
        let expired = self.status(&row).expiry_operation_id;
        let results = self.results(&op.id).await?;
        self.settle(name, op, &results).await;
        let end = op.end_time.unwrap_or(1).max(1);
        let status = if !expired.is_empty() && op.id == expired {
            // The destroy the binding's end started: its accounts' roles removed, not in sync.
            let version = self.status(&row).reconciled_version;
            BindingStatus::after_expiry(&op.id, end, results, version)
        } else if !expired.is_empty() {
            // A reconcile that ended after the binding's end came (cancelled by it, or past it): what it found is
            // not where the accounts stand once their roles are removed.
            tracing::info!(binding = name, operation = op.id, "a reconcile ended after the binding expired");
            return Ok(());
        } else if op.account_scope.is_empty() {
            let interval = Duration::from_secs(record.reconcile_interval_secs.max(1));
            let jitter = Duration::from_millis(rand::rng().random_range(0..=interval.as_millis() as u64 / 10));
            let version = self.version_reconciled(op, &row).await;
            BindingStatus::from_results(&op.id, end, results, interval, jitter, version)
        } else if results.is_empty() && op.state == OperationState::Failed {
            // It stopped before its accounts (it could not read them): what the status says of them stands.
            tracing::warn!(
                binding = name,
                operation = op.id,
                message = op.message,
                "a reconcile of some accounts failed"
            );
            return Ok(());
        } else {
            let scope = op.account_scope.iter().cloned().collect();
            self.status(&row).merged(&op.id, end, &scope, results)
        };
        let mut status = status;
        status.expiry_operation_id = expired;
        self.engine.journal().set_binding_status(name, records::encode(&status)).await?;
        tracing::info!(
            binding = name,
            operation = op.id,
            in_sync = status.counts.in_sync,
            drifted = status.counts.drifted,
            failed = status.counts.failed,
            "reconcile recorded"
        );
        Ok(())
    }

    /// Every account result of an operation.
    async fn results(&self, op: &str) -> Result<Vec<AccountResult>, Error> {
        let mut results = Vec::new();
        let mut token = String::new();
        loop {
            let (page, next) = self.engine.account_results(op, &[], 1000, &token).await?;
            // An account whose result cannot be read (logged by the listing) keeps the state it had.
            results.extend(page.into_iter().filter_map(Listed::read));
            if next.is_empty() {
                return Ok(results);
            }
            token = next;
        }
    }

    /// Settles the accounts of `binding` that reconciles took (`waiting`) and that have ended — their followers
    /// may not have yet, or their replica stopped first — and returns the accounts that wait for the binding now.
    async fn settle_taken(&self, binding: &str, waiting: &[WaitingAccount]) -> Result<Vec<WaitingAccount>, Error> {
        let taken: BTreeSet<&str> = waiting.iter().filter_map(|w| w.operation_id.as_deref()).collect();
        for id in taken {
            match self.engine.operation(id).await {
                Ok(op) if op.state.is_final() || op.end_time.is_some() => {
                    let results = self.results(id).await?;
                    self.settle(binding, &op, &results).await;
                }
                Ok(_) => {}
                // Gone (retention took it): what it took waits no more; the next full reconcile has them.
                Err(Error::NotFound(_)) => self.engine.journal().settle_accounts(id, &[], 0, 0).await?,
                Err(e) => return Err(e),
            }
        }
        Ok(self.waiting().await?.remove(binding).unwrap_or_default())
    }

    /// Settles the accounts events named that the finished `op` took: those it could not reconcile (all of them, if
    /// it failed before its accounts) wait to be tried again after `retry_after`; the others wait no more. Every
    /// replica that followed `op` may settle it: the second finds nothing left to settle.
    async fn settle(&self, name: &str, op: &Operation, results: &[AccountResult]) {
        let journal = self.engine.journal();
        let taken: Vec<String> = match journal.waiting_accounts().await {
            Ok(all) => {
                all.into_iter().filter(|w| w.operation_id.as_deref() == Some(&op.id)).map(|w| w.account_id).collect()
            }
            Err(e) => {
                tracing::warn!(binding = name, error = %e, "cannot read the accounts the reconcile took");
                return;
            }
        };
        if taken.is_empty() {
            return;
        }
        let retry: Vec<String> = if results.is_empty() && op.state == OperationState::Failed {
            taken
        } else {
            results.iter().filter(|r| r.outcome == Outcome::Failed).map(|r| r.account_id.clone()).collect()
        };
        let due = crate::now_ms().saturating_add(self.retry_after.as_millis() as i64);
        match journal.settle_accounts(&op.id, &retry, due, EVENT_ATTEMPTS).await {
            Ok(()) if !retry.is_empty() => tracing::warn!(
                binding = name,
                operation = op.id,
                accounts = retry.len(),
                retry_in = ?self.retry_after,
                "accounts events named were not reconciled; they are tried again"
            ),
            Ok(()) => {}
            Err(e) => tracing::warn!(binding = name, error = %e, "cannot settle the accounts the reconcile took"),
        }
    }

    /// The binding version a finished operation reconciled: the current one if its spec — as the operation ran
    /// it, under the ceiling — is the operation's (compared with the ExternalId's mark, not the ExternalId).
    async fn version_reconciled(&self, op: &Operation, row: &BindingRow) -> u64 {
        let current = match self.spec(row) {
            Ok(spec) => self.engine.within_ceiling(spec).await.ok(),
            Err(_) => None,
        };
        let current = current.map(|s| secrets::redacted(&RawSpec::from(&s), self.engine.redactor()));
        if current.as_ref() == Some(&op.spec) { row.version } else { row.version.saturating_sub(1) }
    }

    /// Validates, checks the ceiling and runs the guardrails.
    async fn checked(&self, raw: &RawBinding) -> Result<Binding, Error> {
        let binding = Binding::validate(raw, self.engine.now())?;
        let under = self.engine.within_ceiling(binding.spec.clone()).await.map_err(under_binding)?;
        self.engine.guardrails(&under).await.map_err(under_binding)?;
        Ok(binding)
    }

    /// The binding as the journal keeps it, its ExternalId sealed.
    fn record(&self, b: &Binding) -> Result<Vec<u8>, Error> {
        let spec = secrets::sealed(&RawSpec::from(&b.spec), self.engine.journal_key(), &seal_context(&b.name))?;
        let record = BindingRecord {
            spec,
            mode: b.mode,
            reconcile_interval_secs: b.reconcile_interval.as_secs(),
            expires_at: b.expires_at,
        };
        Ok(records::encode(&record))
    }

    async fn row(&self, name: &str) -> Result<BindingRow, Error> {
        self.engine.journal().get_binding(name).await?.ok_or_else(|| Error::NotFound(format!("binding {name}")))
    }

    /// A stored binding, its spec's ExternalId opened.
    fn decode(&self, row: &BindingRow) -> Result<BindingRecord, Error> {
        let what = format!("binding {}", row.name);
        let mut record: BindingRecord = records::decode(&row.binding, &what)?;
        record.spec = secrets::opened(&record.spec, self.engine.journal_key(), &seal_context(&row.name), &what)?;
        Ok(record)
    }

    /// Revokes every session of binding `name`'s role issued before now, where its spec is placed (or in those
    /// of `accounts`): an operation of the binding's spec ([`crate::revoke`]).
    pub async fn revoke(
        &self,
        name: &str,
        accounts: Option<std::collections::BTreeSet<String>>,
        idempotency_key: Option<String>,
        created_by: &str,
    ) -> Result<Operation, Error> {
        let spec = self.spec(&self.row(name).await?)?;
        let created_by = created_by.to_string();
        self.engine.start_revoke(crate::RevokeRequest { spec, accounts, idempotency_key, created_by }).await
    }

    /// A stored binding's spec, validated again. One stored before bindings refused `role.adopt_existing` is
    /// reconciled without it: a hand-made role is reported not owned, never taken over with nobody present.
    fn spec(&self, row: &BindingRow) -> Result<AccessSpec, Error> {
        let mut spec = AccessSpec::try_from(&self.decode(row)?.spec)?;
        if spec.role.adopt_existing {
            tracing::warn!(
                binding = row.name,
                "the binding's spec says role.adopt_existing, which bindings refuse: reconciled without it"
            );
            spec.role.adopt_existing = false;
        }
        Ok(spec)
    }

    /// A binding's status; a status that does not decode is logged and read as none (the next reconcile writes
    /// it anew).
    fn status(&self, row: &BindingRow) -> BindingStatus {
        if row.status.is_empty() {
            return BindingStatus::default();
        }
        records::decode(&row.status, &format!("the status of binding {}", row.name)).unwrap_or_else(|e| {
            tracing::warn!(binding = row.name, error = %e, "the binding's status is unreadable; reconciling anew");
            BindingStatus::default()
        })
    }

    /// A stored binding as callers see it: its spec's ExternalId replaced by its mark.
    fn view(&self, row: &BindingRow, with_accounts: bool) -> Result<BindingView, Error> {
        let record = self.decode(row)?;
        let mut status = self.status(row);
        if !with_accounts {
            status.accounts.clear();
        }
        Ok(BindingView {
            name: row.name.clone(),
            version: row.version,
            spec: secrets::redacted(&record.spec, self.engine.redactor()),
            mode: record.mode,
            reconcile_interval: Duration::from_secs(record.reconcile_interval_secs),
            create_time: row.create_time,
            update_time: row.update_time,
            expires_at: record.expires_at,
            status,
        })
    }
}

fn external_id(spec: Option<&mut RawSpec>) -> Option<&mut String> {
    spec?.role.as_mut()?.trust.as_mut().map(|t| &mut t.external_id)
}

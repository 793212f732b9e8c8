//! Access bindings and the reconcile loop: specs crossroled keeps true over time.
//!
//! A binding is a named, versioned spec with a mode and an interval, kept in the journal (a [`BindingRecord`],
//! its ExternalId sealed). The schedule (a loop of [`crate::runtime`]) wakes on every change and at least every tick; each due
//! binding gets a RECONCILE operation through the same engine, journal, concurrency, failure tolerance and rate
//! limits as an apply (in DETECT mode, a dry run). A binding never reconciles twice at once: its unfinished
//! operation, found in the journal, is waited for instead — also after a restart, when the engine resumes it. When
//! an operation ends, its per-account results become the binding's status ([`BindingStatus::from_results`]),
//! and the next reconcile is due one interval later, with up to 10% jitter so that bindings created together do
//! not fire together.
//!
//! Accounts an AWS Organizations event names ([`Bindings::reconcile_accounts`]) get a reconcile of just them in each binding
//! whose spec concerns them, at once or when the binding's running reconcile ends; its result replaces only those
//! accounts' states, and the next full reconcile stays due when it was.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use crossrole_core::{
    AccessSpec,
    binding::{Binding, BindingMode, BindingStatus, BindingView, RawBinding},
    ops::{Operation, OperationKind, OperationState},
    secret::Redactor,
    spec::RawSpec,
    unreadable::{Listed, ListedBinding, UnreadableBinding},
};
use crossrole_store::BindingRow;
use rand::Rng;
use tokio::sync::{Mutex, Notify};

use crate::{
    Engine, Error, ListFilter, StartRequest,
    pages::Listing,
    records::{self, BindingRecord},
    secrets,
};

/// Accounts waiting for a binding's running reconcile to end.
#[derive(Debug, Clone, Default)]
struct Pending {
    accounts: BTreeSet<String>,
    created_by: String,
}

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
    /// Binding → accounts Organizations events named while it was reconciling, to reconcile once it ends, and who
    /// named them (the reconcile says it was them).
    pending: Arc<Mutex<BTreeMap<String, Pending>>>,
    wake: Arc<Notify>,
}

impl Bindings {
    /// The bindings of `engine`'s journal.
    pub fn new(engine: Engine) -> Bindings {
        Bindings { engine, running: Default::default(), pending: Default::default(), wake: Arc::new(Notify::new()) }
    }

    /// Creates a binding: validated, checked against the ceiling and the guardrails, then reconciled at once.
    pub async fn create(&self, raw: &RawBinding) -> Result<BindingView, Error> {
        let binding = self.checked(raw).await?;
        let now = crate::now_ms();
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
        let mut raw = raw.clone();
        let name = if raw.name.is_empty() {
            raw.spec.as_ref().map(|s| s.name.clone()).unwrap_or_default()
        } else {
            raw.name.clone()
        };
        if let Some(e) = external_id(raw.spec.as_mut())
            && Redactor::is_mark(e)
        {
            let current = self.row(&name).await?;
            let stored = self.decode(&current)?;
            *e = stored.spec.role.and_then(|r| r.trust).map(|t| t.external_id).unwrap_or_default();
        }
        let binding = self.checked(&raw).await?;
        let row = self
            .engine
            .journal()
            .update_binding(&binding.name, self.record(&binding)?, expected_version, crate::now_ms())
            .await?
            .ok_or_else(|| Error::NotFound(format!("binding {}", binding.name)))?;
        self.wake.notify_one();
        self.view(&row, true)
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

    /// Deletes a binding; unless `keep_roles`, a DESTROY of its spec is started first and returned.
    pub async fn delete(&self, name: &str, keep_roles: bool, created_by: &str) -> Result<Option<Operation>, Error> {
        let row = self.row(name).await?;
        let mut operation = None;
        if !keep_roles {
            let spec = self.spec(&row)?;
            operation = Some(
                self.engine
                    .start(StartRequest {
                        kind: OperationKind::Destroy,
                        spec,
                        idempotency_key: None,
                        created_by: created_by.to_string(),
                        binding_name: Some(name.to_string()),
                        dry_run: false,
                        accounts: None,
                    })
                    .await?,
            );
        }
        self.engine.journal().delete_binding(name).await?;
        Ok(operation)
    }

    /// Starts a reconcile of `name` now, or returns the one running.
    pub async fn reconcile(&self, name: &str, created_by: &str) -> Result<Operation, Error> {
        if let Some(id) = self.running_operation(name).await {
            self.follow(name.to_string(), id.clone()).await;
            return self.engine.operation(&id).await;
        }
        let row = self.row(name).await?;
        self.start_reconcile(&row, None, created_by).await
    }

    /// Enrols `accounts` (named by Organizations events, and read again into discovery's tree: see
    /// `Discovery::learn`) into every binding whose spec concerns them (selects them, or was applied there): each
    /// such binding gets a reconcile of just those accounts, now, or once its running reconcile ends. Returns the
    /// operations started now.
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
                if let Some(id) = self.running_operation(&row.name).await {
                    // After it ends, the loop starts the reconcile of these accounts.
                    let mut pending = self.pending.lock().await;
                    let waiting = pending.entry(row.name.clone()).or_default();
                    waiting.accounts.extend(concerned);
                    waiting.created_by = created_by.to_string();
                    drop(pending);
                    self.follow(row.name.clone(), id).await;
                    continue;
                }
                match self.start_reconcile(&row, Some(concerned), created_by).await {
                    Ok(op) => started.push(op),
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

    /// Starts a reconcile of a binding: of every account its spec selects, or only of `accounts`.
    async fn start_reconcile(
        &self,
        row: &BindingRow,
        accounts: Option<BTreeSet<String>>,
        created_by: &str,
    ) -> Result<Operation, Error> {
        let name = row.name.as_str();
        let record = self.decode(row)?;
        let scoped = accounts.as_ref().map(BTreeSet::len);
        let op = self
            .engine
            .start(StartRequest {
                kind: OperationKind::Reconcile,
                spec: self.spec(row)?,
                idempotency_key: None,
                created_by: created_by.to_string(),
                binding_name: Some(name.to_string()),
                dry_run: record.mode == BindingMode::Detect,
                accounts,
            })
            .await?;
        let mut status = self.status(row);
        status.running_operation_id = op.id.clone();
        if let Err(e) = self.engine.journal().set_binding_status(name, records::encode(&status)).await {
            tracing::warn!(binding = name, error = %e, "cannot record the running reconcile");
        }
        self.follow(name.to_string(), op.id.clone()).await;
        match scoped {
            None => tracing::info!(binding = name, operation = op.id, version = row.version, "reconcile started"),
            Some(n) => {
                tracing::info!(binding = name, operation = op.id, accounts = n, "reconcile of some accounts started")
            }
        }
        Ok(op)
    }

    /// What wakes the schedule early: a change that makes a binding due.
    pub(crate) fn woken(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// One pass of the schedule ([`crate::runtime`]): starts a reconcile of each due binding, and of the accounts
    /// events named where a binding's reconcile has ended.
    pub(crate) async fn pass(&self) -> Result<(), Error> {
        let now = crate::now_ms();
        let mut after: Option<String> = None;
        loop {
            let rows = self.engine.journal().list_bindings(200, after.as_deref()).await?;
            if rows.is_empty() {
                return Ok(());
            }
            after = rows.last().map(|r| r.name.clone());
            for row in rows {
                let due = self.status(&row).due(row.version, now);
                let pending = self.pending.lock().await.get(&row.name).is_some_and(|p| !p.accounts.is_empty());
                if !due && !pending {
                    continue;
                }
                if let Some(id) = self.running_operation(&row.name).await {
                    self.follow(row.name.clone(), id).await;
                    continue;
                }
                // A full reconcile covers the accounts events named too.
                let pending = self.pending.lock().await.remove(&row.name).filter(|p| !p.accounts.is_empty());
                let (accounts, created_by) = match &pending {
                    Some(p) if !due => (Some(p.accounts.clone()), p.created_by.as_str()),
                    _ => (None, "reconciler"),
                };
                if let Err(e) = self.start_reconcile(&row, accounts, created_by).await {
                    tracing::warn!(binding = row.name, error = %e, "cannot start a reconcile");
                    // Tried again at the next pass.
                    if let Some(p) = pending {
                        let mut all = self.pending.lock().await;
                        let waiting = all.entry(row.name.clone()).or_default();
                        waiting.accounts.extend(p.accounts);
                        if waiting.created_by.is_empty() {
                            waiting.created_by = p.created_by;
                        }
                    }
                }
            }
        }
    }

    /// The running reconcile of `binding`, if any (looked up in the journal after a restart).
    async fn running_operation(&self, binding: &str) -> Option<String> {
        if let Some(id) = self.running.lock().await.get(binding).cloned()
            && let Ok(op) = self.engine.operation(&id).await
            && !op.state.is_final()
        {
            return Some(id);
        }
        let filter = ListFilter {
            states: OperationState::ALL.into_iter().filter(|s| !s.is_final()).collect(),
            binding_name: binding.to_string(),
            ..Default::default()
        };
        let (ops, _) = self.engine.list_operations(&filter, 1, "").await.ok()?;
        ops.into_iter().next().map(|o| match o {
            Listed::Read(o) => o.id,
            Listed::Unreadable(o) => o.id,
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
        let mut results = Vec::new();
        let mut token = String::new();
        loop {
            let (page, next) = self.engine.account_results(&op.id, &[], 1000, &token).await?;
            // An account whose result cannot be read (logged by the listing) keeps the state it had.
            results.extend(page.into_iter().filter_map(Listed::read));
            if next.is_empty() {
                break;
            }
            token = next;
        }
        let end = op.end_time.unwrap_or(1).max(1);
        let status = if op.account_scope.is_empty() {
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
        let binding = Binding::validate(raw)?;
        let under = self.engine.within_ceiling(binding.spec.clone()).await.map_err(under_binding)?;
        self.engine.guardrails(&under).await.map_err(under_binding)?;
        Ok(binding)
    }

    /// The binding as the journal keeps it, its ExternalId sealed.
    fn record(&self, b: &Binding) -> Result<Vec<u8>, Error> {
        let spec = secrets::sealed(&RawSpec::from(&b.spec), self.engine.journal_key(), &seal_context(&b.name))?;
        let record = BindingRecord { spec, mode: b.mode, reconcile_interval_secs: b.reconcile_interval.as_secs() };
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

    /// A stored binding's spec, validated again.
    fn spec(&self, row: &BindingRow) -> Result<AccessSpec, Error> {
        Ok(AccessSpec::try_from(&self.decode(row)?.spec)?)
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
            status,
        })
    }
}

fn external_id(spec: Option<&mut RawSpec>) -> Option<&mut String> {
    spec?.role.as_mut()?.trust.as_mut().map(|t| &mut t.external_id)
}

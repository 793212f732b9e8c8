//! The ends of applies: an apply that carries an end (`expires_at`) puts it in the journal with the spec it
//! applied (its ExternalId sealed), one end per spec — a later apply's end replaces it, and an apply without one
//! removes it ([`Expiries::set`]). At the end, the schedule ([`crate::runtime`]), on whichever replica runs it and
//! within its tick, starts a DESTROY of the spec (its targets and every account where it was placed: the roles,
//! their trust and the trusted side's grant) and records it on the end ([`Expiries::pass`]).
//!
//! Once: the destroy is started under an idempotency key of the spec's name and its end, so the journal gives every
//! replica and every pass the same one; the end then names it, written only over the end that was read. An
//! extension that lands between the read and the destroy loses to it: the access ends early (never late), and the
//! new end is acted on again at its time.

use crossrole_core::{
    AccessSpec,
    expiry::rfc3339,
    ops::{Millis, OperationKind},
    spec::RawSpec,
};
use crossrole_store::AccessEndRow;

use crate::{Engine, Error, StartRequest, bindings::EXPIRY, records, secrets};

/// The context an end's sealed spec is bound to.
fn seal_context(spec: &str) -> String {
    format!("access-end:{spec}")
}

/// The ends of applies. Cheap to clone.
#[derive(Clone)]
pub struct Expiries {
    engine: Engine,
}

/// An end as callers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEnd {
    /// When the access ends.
    pub expires_at: Millis,
    /// The destroy that removed it, once one has.
    pub operation_id: Option<String>,
}

impl Expiries {
    /// The ends of `engine`'s journal.
    pub fn new(engine: Engine) -> Expiries {
        Expiries { engine }
    }

    /// Sets the end of `spec`'s access to `end` (`None`: its access lasts), set by `created_by`. Returns the end it
    /// had, if any (for the audit log: an extension names both).
    pub async fn set(
        &self,
        spec: &AccessSpec,
        end: Option<Millis>,
        created_by: &str,
    ) -> Result<Option<AccessEnd>, Error> {
        let journal = self.engine.journal();
        let before = match end {
            None => journal.clear_access_end(&spec.name).await?,
            Some(expires_at) => {
                let sealed =
                    secrets::sealed(&RawSpec::from(spec), self.engine.journal_key(), &seal_context(&spec.name))?;
                let row = AccessEndRow {
                    spec_name: spec.name.clone(),
                    expires_at,
                    spec: records::encode(&sealed),
                    created_by: created_by.to_string(),
                    update_time: self.engine.now(),
                    operation_id: None,
                };
                journal.set_access_end(row).await?
            }
        };
        Ok(before.map(|r| AccessEnd { expires_at: r.expires_at, operation_id: r.operation_id }))
    }

    /// The end of a spec's access, if it has one.
    pub async fn get(&self, spec_name: &str) -> Result<Option<AccessEnd>, Error> {
        let row = self.engine.journal().access_end(spec_name).await?;
        Ok(row.map(|r| AccessEnd { expires_at: r.expires_at, operation_id: r.operation_id }))
    }

    /// One pass of the schedule: a destroy of each spec whose end has come, started once and recorded on the end.
    /// One that cannot be started now is tried again at the next pass (its end stays in the journal).
    pub(crate) async fn pass(&self) -> Result<(), Error> {
        for row in self.engine.journal().access_ends_due(self.engine.now()).await? {
            if let Err(e) = self.expire(&row).await {
                tracing::warn!(spec = row.spec_name, error = %e, "cannot remove the access whose end came");
            }
        }
        Ok(())
    }

    async fn expire(&self, row: &AccessEndRow) -> Result<(), Error> {
        let what = format!("the end of spec {}", row.spec_name);
        let sealed: RawSpec = records::decode(&row.spec, &what)?;
        let raw = secrets::opened(&sealed, self.engine.journal_key(), &seal_context(&row.spec_name), &what)?;
        let spec = AccessSpec::try_from(&raw)?;
        let (op, created) = self
            .engine
            .begin(StartRequest {
                idempotency_key: Some(format!("access-end:{}:{}", row.spec_name, row.expires_at)),
                ..StartRequest::new(OperationKind::Destroy, spec, EXPIRY)
            })
            .await?;
        let took = self.engine.journal().take_access_end(&row.spec_name, row.expires_at, &op.id).await?;
        if created {
            tracing::info!(
                spec = row.spec_name,
                operation = op.id,
                end = rfc3339(row.expires_at),
                recorded = took,
                "the access's end came: it is being removed"
            );
        }
        Ok(())
    }
}

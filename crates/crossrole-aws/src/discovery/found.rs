//! Accounts a selection is sure of before the organization has been read to the end.
//!
//! Listing the accounts is most of a walk's calls: a page of 20 accounts per call, each unit's pages one after
//! another, at Organizations' 10 requests per second: about 50 s at 10,000 accounts. The units are few. So a
//! walk lists the units first (and, for a fresh read of part of the organization, confirms the selected units'
//! chains); from then on, what a selector that is decided by units alone ([`org::decided_by_units`]: no account
//! ids, no tags) selects is known for each account the moment its page arrives. [`Finder`] sends those accounts
//! through a [`Found`] channel, judged by the same [`Matcher`] the whole selection is made with, so an operation
//! can start on them while the rest of the organization is listed.
//!
//! What was sent is in the selection returned at the end, unless the organization changed during the read in a
//! way that sends the read to a full walk (a selected unit deleted while its accounts were listed): the same
//! window in which any account can move while an operation works on it.

use std::collections::BTreeMap;

use crossrole_core::{
    org::{self, AccountInfo, Matcher, OrgTree, OrgUnit, OrganizationInfo},
    spec::TargetSelector,
};

use super::{WalkListener, scoped::Scope};
use crate::api::OuRecord;

/// Where a selection sends, page by page, the accounts it selects, before it returns (see the module's
/// documentation). Only ACTIVE (selectable) accounts are sent; skipped ones come with the selection at the end.
pub type Found = tokio::sync::mpsc::UnboundedSender<Vec<AccountInfo>>;

/// Judges each page of accounts of a walk once the walk's units are known, and sends the selected ones.
pub(super) struct Finder<'a> {
    selector: &'a TargetSelector,
    at: &'a str,
    /// `None` when nobody listens, or the selector needs more than units to decide.
    found: Option<&'a Found>,
    /// For a read of part of the organization: the tree that said where the part is, and the part.
    part: Option<(&'a OrgTree, &'a Scope)>,
    organization: Option<(OrganizationInfo, String)>,
    matcher: Option<Matcher>,
    /// Pages that arrived before the units were known.
    held: Vec<AccountInfo>,
}

impl<'a> Finder<'a> {
    pub(super) fn new(
        selector: &'a TargetSelector,
        at: &'a str,
        found: Option<&'a Found>,
        part: Option<(&'a OrgTree, &'a Scope)>,
    ) -> Finder<'a> {
        let found = found.filter(|_| org::decided_by_units(selector));
        Finder { selector, at, found, part, organization: None, matcher: None, held: Vec::new() }
    }

    fn send(&self, page: &[AccountInfo]) {
        let (Some(found), Some(matcher)) = (self.found, &self.matcher) else { return };
        let sure: Vec<AccountInfo> =
            page.iter().filter(|a| matches!(matcher.classify(a), Some(Ok(())))).cloned().collect();
        if !sure.is_empty() {
            // A receiver that went away no longer needs them; the selection at the end is what counts.
            let _ = found.send(sure);
        }
    }
}

impl WalkListener for Finder<'_> {
    fn organization(&mut self, organization: &OrganizationInfo, root_id: &str) {
        self.organization = Some((organization.clone(), root_id.to_string()));
    }

    fn units_known(&mut self, units: &BTreeMap<String, OrgUnit>, listed: &BTreeMap<String, Vec<OuRecord>>) {
        if self.found.is_none() {
            return;
        }
        // The units the selection will be made on, and the selector it will be made with. Anything the units do
        // not answer (a chain that moved, a path that is not there) is left to the selection at the end.
        let matcher = match self.part {
            Some((known, scope)) => super::scoped::confirm(known, scope, listed, units.clone())
                .and_then(|(tree, selector)| Matcher::of(&tree, &selector, self.at).ok()),
            None => self.organization.as_ref().and_then(|(organization, root_id)| {
                let tree = OrgTree {
                    organization: organization.clone(),
                    root_id: root_id.clone(),
                    units: units.clone(),
                    accounts: BTreeMap::new(),
                };
                Matcher::of(&tree, self.selector, self.at).ok()
            }),
        };
        match matcher {
            Some(matcher) => {
                self.matcher = Some(matcher);
                let held = std::mem::take(&mut self.held);
                self.send(&held);
            }
            None => {
                self.found = None;
                self.held.clear();
            }
        }
    }

    fn accounts(&mut self, page: &[AccountInfo]) {
        if self.found.is_none() {
            return;
        }
        if self.matcher.is_some() {
            self.send(page);
        } else {
            self.held.extend_from_slice(page);
        }
    }
}

// What the views share: the organization (its units and accounts, read page by page) and the bindings, with each
// account's state per binding.

import type { Api } from "./api";
import type { Account, OrganizationalUnit } from "./gen/crossrole/v1/organization_pb";
import { AccountState } from "./gen/crossrole/v1/spec_pb";
import { SyncState, type Binding } from "./gen/crossrole/v1/binding_pb";
import { AccountErrorReason } from "./gen/crossrole/v1/change_pb";
import { AccountOutcome } from "./gen/crossrole/v1/operation_pb";

export interface Org {
  id: string;
  root: OrganizationalUnit;
  accounts: Map<string, Account>;
}

/// The organization as crossroled keeps it: the tree of units, and every account (1,000 a page).
export async function loadOrg(api: Api): Promise<Org> {
  const o = (await api.org.describeOrganization({})).organization;
  if (!o?.root) throw new Error("crossroled described no organization");
  return { id: o.id, root: o.root, accounts: await allAccounts(api, o.root.id) };
}

/// Every account below the root: those the selection takes, and those it skips (not ACTIVE), which the tree marks.
async function allAccounts(api: Api, root: string): Promise<Map<string, Account>> {
  const accounts = new Map<string, Account>();
  let pageToken = "";
  do {
    const page = await api.org.listAccounts({ selector: { organizationalUnitIds: [root] }, pageSize: 1000, pageToken });
    for (const a of page.accounts) accounts.set(a.id, a);
    for (const s of page.skipped) if (s.account) accounts.set(s.account.id, s.account);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return accounts;
}

export async function loadBindings(api: Api): Promise<Binding[]> {
  const bindings: Binding[] = [];
  let pageToken = "";
  do {
    const page = await api.bindings.listBindings({ pageSize: 1000, pageToken });
    bindings.push(...page.bindings);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return bindings;
}

/// An account's state under a binding, as a badge says it.
export type Standing =
  | "in sync"
  | "drifted"
  | "failed"
  | "not owned"
  | "pending"
  | "skipped"
  | "not targeted"
  | "removed";

/// A binding with every account's status (a list of bindings carries their counts only).
export async function fullBinding(api: Api, name: string): Promise<Binding> {
  const { binding } = await api.bindings.getBinding({ name });
  if (!binding) throw new Error(`no binding ${name}`);
  return binding;
}

/// Each account's standing under the binding `listed`: from its status, and the accounts its last reconcile
/// skipped.
export async function standings(api: Api, listed: Binding): Promise<Map<string, Standing>> {
  const b = await fullBinding(api, listed.name);
  const out = new Map<string, Standing>();
  for (const a of b.status?.accounts ?? []) {
    let s: Standing;
    switch (a.state) {
      case SyncState.IN_SYNC:
        s = "in sync";
        break;
      case SyncState.DRIFTED:
        s = "drifted";
        break;
      case SyncState.FAILED:
        s = a.error?.reason === AccountErrorReason.NOT_OWNED ? "not owned" : "failed";
        break;
      case SyncState.REMOVED:
        // The binding expired and its role here was removed: not in sync, not pending.
        s = "removed";
        break;
      default:
        s = "pending";
    }
    out.set(a.accountId, s);
  }
  const last = b.status?.lastOperationId;
  if (last) {
    let pageToken = "";
    do {
      const page = await api.ops.listAccountResults({
        operationId: last,
        outcomes: [AccountOutcome.SKIPPED],
        pageSize: 1000,
        pageToken,
      });
      for (const r of page.results) if (!out.has(r.accountId)) out.set(r.accountId, "skipped");
      pageToken = page.nextPageToken;
    } while (pageToken);
  }
  return out;
}

export function suspended(a: Account | undefined): boolean {
  return a !== undefined && a.state !== AccountState.ACTIVE;
}

export function stateName(a: Account): string {
  return AccountState[a.state] ?? "UNKNOWN";
}

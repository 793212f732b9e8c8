// Bindings, drifted and failed first; each with its accounts' states and, for a drifted account, the drift as a
// diff.

import { api } from "../api";
import { badge, clear, h, when } from "../dom";
import { BindingMode, SyncState, type Binding } from "../gen/crossrole/v1/binding_pb";
import { fullBinding, loadBindings } from "../model";
import { ending } from "../ends";
import { changesView } from "./changes";

export async function bindingsView(main: HTMLElement) {
  clear(main, h("p", { class: "loading" }, "Reading bindings…"));
  // The list carries counts; the bindings with accounts in trouble are read whole, for those accounts.
  const bindings = await Promise.all(
    (await loadBindings(api)).map((b) => ((b.status?.drifted ?? 0) + (b.status?.failed ?? 0) > 0 ? fullBinding(api, b.name) : b)),
  );
  const weight = (b: Binding) => (b.status?.failed ?? 0) * 1_000_000 + (b.status?.drifted ?? 0);
  bindings.sort((a, b) => weight(b) - weight(a) || a.name.localeCompare(b.name));
  clear(
    main,
    h("div", { class: "toolbar" }, h("h2", {}, "Bindings"), h("span", { class: "muted" }, `${bindings.length}, drifted and failed first`)),
    bindings.length === 0 ? h("p", { class: "muted" }, "No binding yet: `crossrole bindings apply -f spec.yaml`.") : null,
    h("div", { id: "bindings" }, bindings.map(card)),
  );
}

/// What is left of the binding's access ("expires in 3h 12m"), or when it ended and the destroy that ended it.
function end(b: Binding): HTMLElement | null {
  if (!b.expiresAt) return null;
  const at = Number(b.expiresAt.seconds) * 1000 + b.expiresAt.nanos / 1e6;
  const { expired, text } = ending(at, Date.now(), when(b.expiresAt));
  const destroy = b.status?.expiryOperationId;
  return h(
    "p",
    { class: `expiry${expired ? " expired" : ""}`, title: when(b.expiresAt) },
    badge(expired ? "expired" : "expires", text),
    destroy ? [" — ", h("a", { href: `#/operations/${destroy}` }, "the destroy it started")] : null,
  );
}

function card(b: Binding): HTMLElement {
  const s = b.status;
  const troubled = (s?.accounts ?? []).filter((a) => a.state === SyncState.DRIFTED || a.state === SyncState.FAILED);
  return h(
    "section",
    { class: "card", "data-binding": b.name },
    h(
      "h3",
      {},
      h("a", { href: `#/org?binding=${encodeURIComponent(b.name)}` }, b.name),
      " ",
      h("span", { class: "muted" }, (BindingMode[b.mode] ?? "").toLowerCase(), b.reconcileInterval ? `, every ${b.reconcileInterval.seconds}s` : ""),
    ),
    h(
      "p",
      { class: "summary" },
      badge("in sync", `${s?.inSync ?? 0} in sync`),
      " ",
      badge("drifted", `${s?.drifted ?? 0} drifted`),
      " ",
      badge("failed", `${s?.failed ?? 0} failed`),
      " ",
      badge("pending", `${s?.pending ?? 0} pending`),
      s?.removed ? [" ", badge("removed", `${s.removed} removed by its end`)] : null,
    ),
    h(
      "p",
      { class: "muted" },
      `last reconcile ${when(s?.lastReconcileTime) || "never"}`,
      s?.lastOperationId ? [" — ", h("a", { href: `#/operations/${s.lastOperationId}` }, "its operation")] : null,
      s?.runningOperationId ? [" — running now: ", h("a", { href: `#/operations/${s.runningOperationId}` }, "follow it")] : null,
    ),
    end(b),
    troubled.map((a) =>
      h(
        "details",
        { class: "account-status", "data-account": a.accountId },
        h(
          "summary",
          {},
          badge(a.state === SyncState.DRIFTED ? "drifted" : "failed"),
          " ",
          a.accountName || a.accountId,
          " ",
          h("code", {}, a.accountId),
          a.error ? ` ${a.error.code}: ${a.error.message}` : "",
        ),
        a.changes.length ? changesView(a.changes, true) : null,
      ),
    ),
  );
}

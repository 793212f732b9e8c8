// One operation, followed live: WatchOperation replays its events from the journal and then follows it, on any
// replica. Per-account progress fills in as accounts finish; each account's changes show as diffs.

import { api, describe } from "../api";
import { badge, clear, h, when } from "../dom";
import { AccountOutcome, OperationState, type AccountResult, type Operation, type OperationEvent } from "../gen/crossrole/v1/operation_pb";
import { changesView, kindName } from "./changes";
import { kind, stateName } from "./operations";

export async function operationView(main: HTMLElement, id: string, signal: AbortSignal) {
  clear(main, h("p", { class: "loading" }, "Reading the operation…"));
  const { operation } = await api.ops.getOperation({ operationId: id });
  if (!operation) throw new Error(`no operation ${id}`);
  let op: Operation = operation;
  const results = new Map<string, AccountResult>();
  let total = op.counts?.total ?? 0;
  // Accounts settled without running (skipped): done from the moment the targets are known.
  let settled = 0;
  // The operation's own counts, once it ends: exact.
  let ended: number | null = null;
  let state = op.state;
  const bar = h("div", { class: "bar-fill" });
  const progressText = h("span", { id: "progress" });
  const stateBadge = h("span", {});
  const message = h("p", { class: "message" });
  const accounts = h("tbody", {});
  const events = h("ol", { class: "events", reversed: true });
  let shown = 0;

  const finished = () => ended ?? [...results.values()].filter((r) => isFinal(r.outcome)).length + settled;
  const update = () => {
    const done = finished();
    const pct = total > 0 ? Math.min(100, Math.round((done * 100) / total)) : isFinalState(state) ? 100 : 0;
    bar.style.width = `${pct}%`;
    progressText.textContent = `${done} of ${total || "…"} accounts (${pct}%)`;
    progressText.dataset.percent = String(pct);
    clear(stateBadge, badge(stateName(state)));
    message.textContent = op.message;
  };
  const rows = new Map<string, HTMLElement>();
  const accountRow = (r: AccountResult) => {
    const existing = rows.get(r.accountId);
    const tr = h(
      "tr",
      { "data-account": r.accountId },
      h("td", {}, r.accountName || r.accountId, " ", h("code", {}, r.accountId)),
      h("td", {}, badge(outcomeName(r.outcome))),
      h("td", {}, r.error ? `${r.error.code}: ${r.error.message}` : ""),
      h("td", {}, r.changes.length ? changesView(r.changes, false) : h("span", { class: "muted" }, "no change")),
    );
    if (existing) existing.replaceWith(tr);
    else accounts.appendChild(tr);
    rows.set(r.accountId, tr);
  };
  const onEvent = (e: OperationEvent) => {
    const ev = e.event;
    switch (ev.case) {
      case "stateChanged":
        state = ev.value.state;
        op = { ...op, message: ev.value.message };
        if (ev.value.counts?.total) total = ev.value.counts.total;
        if (ev.value.counts && isFinalState(ev.value.state)) ended = ev.value.counts.total - ev.value.counts.pending - ev.value.counts.running;
        break;
      case "targetsResolved":
        total = Math.max(total, ev.value.targetCount + ev.value.skippedCount + ev.value.cleanupCount);
        settled = ev.value.skippedCount;
        break;
      case "accountFinished":
        if (ev.value.result) {
          results.set(ev.value.result.accountId, ev.value.result);
          accountRow(ev.value.result);
        }
        break;
      default:
        break;
    }
    if (shown < 500) {
      events.prepend(h("li", {}, h("code", {}, `#${e.sequence}`), " ", when(e.time), " ", e.accountId ? h("code", {}, e.accountId) : null, " ", describeEvent(e)));
      shown++;
    }
    update();
  };

  clear(
    main,
    h(
      "div",
      { class: "toolbar" },
      h("h2", {}, kind(op.kind), " ", op.spec?.name ?? "", op.dryRun ? " (dry run)" : ""),
      stateBadge,
      h("code", { class: "muted" }, op.id),
    ),
    h("p", { class: "muted" }, `created ${when(op.createTime)} by ${op.createdBy}`, op.bindingName ? ` for binding ${op.bindingName}` : ""),
    h("div", { class: "bar", role: "progressbar" }, bar),
    progressText,
    message,
    h("h3", {}, "Accounts"),
    h("table", { class: "table", id: "accounts" }, h("thead", {}, h("tr", {}, ["account", "outcome", "error", "changes"].map((t) => h("th", {}, t)))), accounts),
    h("h3", {}, "Events"),
    events,
  );
  update();
  try {
    for await (const r of api.ops.watchOperation({ operationId: id, afterSequence: 0n }, { signal })) {
      if (r.event) onEvent(r.event);
    }
  } catch (e) {
    if (!signal.aborted) message.textContent = `The live stream ended: ${describe(e)}. Reload to follow it again.`;
  }
}

function isFinalState(s: OperationState): boolean {
  return [OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED].includes(s);
}

function isFinal(o: AccountOutcome): boolean {
  return ![AccountOutcome.UNSPECIFIED, AccountOutcome.PENDING, AccountOutcome.RUNNING].includes(o);
}

function outcomeName(o: AccountOutcome): string {
  return (AccountOutcome[o] ?? String(o)).toLowerCase().replace(/_/g, " ");
}

function describeEvent(e: OperationEvent): string {
  const ev = e.event;
  switch (ev.case) {
    case "stateChanged":
      return `state ${stateName(ev.value.state)}${ev.value.message ? `: ${ev.value.message}` : ""}`;
    case "targetsResolved":
      return `targets known: ${ev.value.targetCount} to work on, ${ev.value.skippedCount} skipped, ${ev.value.cleanupCount} to clean up`;
    case "phaseStarted":
      return `phase ${String(ev.value.phase)}`;
    case "changeApplied":
      return `applied ${ev.value.change ? kindName(ev.value.change.kind) : ""} ${ev.value.change?.subject ?? ""}`;
    case "callRetried":
      return `retried ${ev.value.call} (${ev.value.awsErrorCode || "transient"}), attempt ${ev.value.attempt}`;
    case "accountFinished":
      return `finished: ${ev.value.result ? outcomeName(ev.value.result.outcome) : ""}`;
    default:
      return "";
  }
}

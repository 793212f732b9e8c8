// The judge: requests evaluated by @cloud-copilot/iam-simulate (strict mode), an IAM policy evaluator crossrole did
// not write. crossrole's own evaluator is never the judge of a claim about IAM; this is.
//
// As a module: `judge(cases)` evaluates `{name, expect, simulation}` cases and returns rows with the decision and
// the statements that decided it. As a program: `node judge.mjs [cases.json]` reads the cases (a JSON array, from the
// file or stdin), prints the table, writes the rows as JSON to $IAM_JUDGE_OUT when set, and exits 1 when a decision
// differs from what was expected (or a request is invalid: strict mode refuses unknown actions, resource types and
// context keys an action does not have).
//
// `expect` is "Allowed", "ExplicitlyDenied", "ImplicitlyDenied", or "Denied" (either denial).

import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const here = path.dirname(fileURLToPath(import.meta.url))
// cargo xtask installs the pinned packages into .cache/tools/iam-judge (IAM_JUDGE_MODULES); a plain `npm ci` here
// works too.
const modules = process.env.IAM_JUDGE_MODULES || path.join(here, 'node_modules')
const require = createRequire(path.join(modules, 'noop.js'))
const sim = require('@cloud-copilot/iam-simulate')

/** The statements that decided `analysis`, as `layer:policy/Sid`. */
function deciding(analysis, decision) {
  if (!analysis) return []
  const sid = (s) => s.statement?.Sid ?? s.explain?.identifier ?? '?'
  const id = (layer, s) => (s.policyId ? `${layer}:${s.policyId}/${sid(s)}` : `${layer}:${sid(s)}`)
  const layers = [
    ['identity', analysis.identityAnalysis],
    ['boundary', analysis.permissionBoundaryAnalysis],
    ['session', analysis.sessionAnalysis],
    ['resource', analysis.resourceAnalysis],
  ]
  const scps = (analysis.scpAnalysis?.ouAnalysis ?? []).map((ou) => [`scp(${ou.orgIdentifier})`, ou])
  const all = [...layers, ...scps].filter(([, a]) => a)
  if (decision === 'ExplicitlyDenied') {
    return all.flatMap(([layer, a]) => (a.denyStatements ?? []).map((s) => id(layer, s)))
  }
  if (decision === 'Allowed') {
    return all
      .filter(([layer]) => layer === 'identity' || layer === 'resource')
      .flatMap(([layer, a]) => (a.allowStatements ?? []).map((s) => id(layer, s)))
  }
  // Implicitly denied: the layers that allowed nothing.
  return all.filter(([, a]) => a.result === 'ImplicitlyDenied').map(([layer]) => `${layer}: no statement allows`)
}

/**
 * The request's context with the state of the resource it is aimed at (`simulation.resourceState`: `{tags,
 * boundary}`) as IAM would send it: `aws:ResourceTag/<key>` for each tag and `iam:PermissionsBoundary` for the
 * boundary, each only where AWS's service reference (iam-simulate's data) gives the action that key.
 */
async function withResourceState(simulation) {
  const state = simulation.resourceState
  if (!state) return simulation
  const { resourceState, ...rest } = simulation
  const req = rest.request
  const [service, action] = req.action.split(':')
  const keys = new Set(await sim.allowedContextKeysForRequest(service, action, req.resource.resource, false, undefined))
  const ctx = { ...req.contextVariables }
  if (keys.has('aws:resourcetag/${tagkey}')) {
    for (const [k, v] of Object.entries(state.tags ?? {})) ctx[`aws:ResourceTag/${k}`] = v
  }
  if (state.boundary && keys.has('iam:permissionsboundary') && !('iam:PermissionsBoundary' in ctx)) {
    ctx['iam:PermissionsBoundary'] = state.boundary
  }
  return { ...rest, request: { ...req, contextVariables: ctx } }
}

/** Evaluates every case; returns rows `{name, expect, decision, deciding, ok, error}`. */
export async function judge(cases) {
  const rows = []
  for (const c of cases) {
    let decision
    let why = []
    let error
    try {
      const r = await sim.runSimulation(await withResourceState(c.simulation), { simulationMode: 'Strict' })
      if (r.resultType === 'error') {
        decision = 'Invalid'
        error = JSON.stringify(r.errors)
      } else {
        decision = r.overallResult
        const analyses = r.resultType === 'wildcard' ? r.results.map((x) => x.analysis) : [r.result?.analysis]
        why = [...new Set(analyses.flatMap((a) => deciding(a, decision)))]
      }
    } catch (e) {
      decision = 'Invalid'
      error = String(e)
    }
    const ok =
      decision === c.expect ||
      (c.expect === 'Denied' && (decision === 'ExplicitlyDenied' || decision === 'ImplicitlyDenied'))
    rows.push({ name: c.name, expect: c.expect, decision, deciding: why, ok, ...(error ? { error } : {}) })
  }
  return rows
}

/** The rows as a table for people. */
export function table(rows) {
  const w = Math.min(110, Math.max(8, ...rows.map((r) => r.name.length + 1)))
  const head = `${'request'.padEnd(w)}  ${'expected'.padEnd(16)}  ${'decision'.padEnd(16)}  deciding statement`
  const lines = rows.map(
    (r) =>
      `${r.ok ? ' ' : '!'}${r.name.padEnd(w - 1).slice(0, w - 1)}  ${r.expect.padEnd(16)}  ${r.decision.padEnd(16)}  ${
        r.error ?? r.deciding.join(', ')
      }`,
  )
  return [head, '-'.repeat(head.length), ...lines].join('\n')
}

/** Prints the table and a summary; whether every case came out as expected. */
export function report(title, rows) {
  console.log(`\n${title}\n${table(rows)}`)
  const wrong = rows.filter((r) => !r.ok)
  const allowed = rows.filter((r) => r.decision === 'Allowed').length
  console.log(
    `${rows.length} requests: ${allowed} allowed, ${rows.length - allowed} denied; ${
      wrong.length ? `${wrong.length} NOT AS EXPECTED (marked !)` : 'all as expected'
    }`,
  )
  return wrong.length === 0
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const input = process.argv[2] ? readFileSync(process.argv[2], 'utf8') : readFileSync(0, 'utf8')
  const cases = JSON.parse(input)
  const rows = await judge(cases)
  if (process.env.IAM_JUDGE_OUT) writeFileSync(process.env.IAM_JUDGE_OUT, JSON.stringify(rows, null, 2))
  const ok = report(process.env.IAM_JUDGE_TITLE ?? 'IAM judge (@cloud-copilot/iam-simulate, strict)', rows)
  process.exit(ok ? 0 : 1)
}

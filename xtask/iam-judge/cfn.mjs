// CloudFormation templates read as CloudFormation would deploy them: the intrinsics deploy/aws/ uses (!Ref, !Sub,
// !If, !Equals, !Not, !Or, !And, !Join, AWS::NoValue) resolved for given parameters, so that the judge evaluates the
// policies that would really be in IAM. An intrinsic it does not know is an error, never a guess.

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

const modules = process.env.IAM_JUDGE_MODULES || path.join(path.dirname(new URL(import.meta.url).pathname), 'node_modules')
const YAML = createRequire(path.join(modules, 'noop.js'))('yaml')

const TAGS = ['Ref', 'Sub', 'If', 'Equals', 'Not', 'Or', 'And', 'Join', 'GetAtt', 'Select', 'Split']
const customTags = TAGS.flatMap((name) =>
  ['scalar', 'seq', 'map'].map((nodeClass) => ({
    tag: `!${name}`,
    collection: nodeClass === 'scalar' ? undefined : nodeClass,
    resolve: (value) => ({ [name === 'Ref' ? 'Ref' : `Fn::${name}`]: value?.toJSON ? value.toJSON() : value }),
  })),
)

const NO_VALUE = Symbol('AWS::NoValue')

/** The template at `file`, parsed (intrinsics as `{Ref}` / `{Fn::X}` objects). */
export function load(file) {
  return YAML.parse(readFileSync(file, 'utf8'), { customTags })
}

/**
 * Resolves `template`'s parameters: defaults, then `overrides`; `CommaDelimitedList`s become arrays. `pseudo` gives
 * the pseudo-parameters (AWS::Partition, AWS::AccountId, ...).
 */
export function parameters(template, overrides, pseudo) {
  const out = { ...pseudo }
  for (const [name, p] of Object.entries(template.Parameters ?? {})) {
    const v = name in overrides ? overrides[name] : p.Default
    if (v === undefined) throw new Error(`parameter ${name} has no default and no value`)
    out[name] = p.Type === 'CommaDelimitedList' && typeof v === 'string' ? v.split(',') : v
  }
  for (const name of Object.keys(overrides)) {
    if (!(name in out)) throw new Error(`no parameter ${name} in the template`)
  }
  return out
}

/** `node` with every intrinsic resolved; conditions are evaluated from the template's `Conditions`. */
export function resolve(template, node, params) {
  const conditions = {}
  const condition = (name) => {
    if (!(name in conditions)) {
      const c = template.Conditions?.[name]
      if (c === undefined) throw new Error(`no condition ${name}`)
      conditions[name] = Boolean(go(c))
    }
    return conditions[name]
  }
  const ref = (name) => {
    if (name === 'AWS::NoValue') return NO_VALUE
    if (!(name in params)) throw new Error(`!Ref ${name}: no such parameter`)
    return params[name]
  }
  const sub = (text, vars = {}) =>
    text.replace(/\$\{(!?)([^}]+)\}/g, (_, bang, name) => {
      if (bang) return `\${${name}}` // `${!x}` is a literal `${x}`: a policy variable for IAM
      const v = name in vars ? vars[name] : ref(name)
      if (typeof v !== 'string') throw new Error(`!Sub \${${name}}: not a string`)
      return v
    })
  function go(n) {
    if (Array.isArray(n)) return n.map(go).filter((v) => v !== NO_VALUE)
    if (n === null || typeof n !== 'object') return n
    const keys = Object.keys(n)
    if (keys.length === 1) {
      const [k] = keys
      const a = n[k]
      switch (k) {
        case 'Ref':
          return ref(a)
        case 'Fn::Sub':
          return Array.isArray(a) ? sub(a[0], go(a[1])) : sub(a)
        case 'Fn::If':
          return go(condition(a[0]) ? a[1] : a[2])
        case 'Fn::Equals':
          return JSON.stringify(go(a[0])) === JSON.stringify(go(a[1]))
        case 'Fn::Not':
          return !go(a[0])
        case 'Fn::Or':
          return a.some((c) => go(c))
        case 'Fn::And':
          return a.every((c) => go(c))
        case 'Fn::Join':
          return go(a[1]).join(a[0])
        case 'Condition':
          return condition(a)
        default:
          if (k.startsWith('Fn::')) throw new Error(`intrinsic ${k} is not modelled`)
      }
    }
    const out = {}
    for (const [k, v] of Object.entries(n)) {
      const r = go(v)
      if (r !== NO_VALUE) out[k] = r
    }
    return out
  }
  return go(node)
}

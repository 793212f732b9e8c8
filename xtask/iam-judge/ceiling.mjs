// The ceiling's matrix: deploy/aws/'s templates, resolved as CloudFormation would deploy them, judged by
// @cloud-copilot/iam-simulate for the calls crossroled makes (they must be allowed) and the escalations an attacker
// holding the bootstrap role's session — or any principal of a member account, under the SCP — would try (they must
// be denied). Every request carries the context keys IAM would send for it: the role's tags and its current
// boundary where the action has the iam:PermissionsBoundary key (taken from AWS's service reference, as
// iam-simulate's data has it), the request's tags, the policy ARN.
//
// Run by `cargo xtask deploy-check`: `node ceiling.mjs <deploy/aws>`; prints the matrix; exits 1 on any request not
// decided as expected.

import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { judge, report } from './judge.mjs'
import { load, parameters, resolve } from './cfn.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))

const dir = process.argv[2] ?? path.join(here, '../../deploy/aws')
const ACCT = '123456789012'
const ARN = (rest) => `arn:aws:iam::${ACCT}:${rest}`
const CEILING = ARN('policy/crossrole-ceiling/CrossroleCeiling')
const BOOTSTRAP = ARN('role/crossrole/CrossroleBootstrap')
const CROSSROLED = 'arn:aws:iam::999999999999:role/crossroled'
const ATTACKER = '444455556666'
const ADMIN = ARN('role/Admin')
const STACKSET = ARN('role/stacksets-exec-0123456789abcdef0123456789abcdef')
const GRANT = ARN('policy/crossrole/crossrole-assume-audit')
const OWNERSHIP = { 'crossrole:managed-by': 'crossrole', 'crossrole:spec': 'audit' }

// The roles a request may be aimed at, as they are in IAM.
const ROLES = {
  owned: { arn: ARN('role/crossrole/Audit'), tags: OWNERSHIP, boundary: CEILING },
  'owned, no boundary (made before the ceiling)': { arn: ARN('role/crossrole/Legacy'), tags: OWNERSHIP },
  'owned, another boundary': {
    arn: ARN('role/crossrole/Other'),
    tags: OWNERSHIP,
    boundary: 'arn:aws:iam::aws:policy/PowerUserAccess',
  },
  'unowned under the path': { arn: ARN('role/crossrole/HandMade'), tags: { team: 'ops' } },
  'unowned under the path, bounded': { arn: ARN('role/crossrole/HandMadeBounded'), tags: {}, boundary: CEILING },
  'outside the path, tagged as owned': { arn: ARN('role/Admin'), tags: OWNERSHIP, boundary: CEILING },
  'the bootstrap role': { arn: BOOTSTRAP, tags: { 'crossrole:component': 'bootstrap' } },
  'a grantee role': { arn: ARN('role/auditor'), tags: { 'crossrole:grantee': 'true' } },
  'a role that is no grantee': { arn: ARN('role/ops'), tags: {} },
}

const ADMIN_DOC = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] }

/** The context IAM sends for `action` on `resource`: what the caller gives (the resource's state is added by the
 * judge, see `state`). */
function context(principal, action, resource, { tags, policyArn, boundary, keys, extra } = {}) {
  const ctx = { 'aws:PrincipalArn': principal, 'aws:PrincipalAccount': principal.split(':')[4] }
  if (boundary) ctx['iam:PermissionsBoundary'] = boundary
  if (tags) {
    for (const [k, v] of Object.entries(tags)) ctx[`aws:RequestTag/${k}`] = v
    ctx['aws:TagKeys'] = Object.keys(tags)
  }
  if (keys) ctx['aws:TagKeys'] = keys
  if (policyArn) ctx['iam:PolicyARN'] = policyArn
  return { ...ctx, ...extra }
}

function request(principal, action, resource, opts) {
  return {
    principal,
    action,
    resource: { resource, accountId: ACCT },
    contextVariables: context(principal, action, resource, opts),
  }
}

/** The state of the resource a request is aimed at: its tags and boundary (the judge sends each as IAM would). */
function state(opts) {
  return opts?.role ? { resourceState: { tags: opts.role.tags ?? {}, boundary: opts.role.boundary } } : {}
}

// ---- the templates as deployed -------------------------------------------------------------------------------------

const PSEUDO = { 'AWS::Partition': 'aws', 'AWS::AccountId': ACCT, 'AWS::Region': 'us-east-1' }

function bootstrap(overrides = {}) {
  const t = load(path.join(dir, 'crossrole-bootstrap.yaml'))
  const params = parameters(t, { CrossroledRoleArn: CROSSROLED, ...overrides }, PSEUDO)
  const role = t.Resources.BootstrapRole.Properties
  const policy = resolve(t, role.Policies[0].PolicyDocument, params)
  const ceiling = resolve(t, t.Resources.CeilingPolicy.Properties.PolicyDocument, params)
  const trust = resolve(t, role.AssumeRolePolicyDocument, params)
  return { policy, ceiling, trust }
}

function scp(overrides = {}) {
  const t = load(path.join(dir, 'crossrole-ceiling-scp.yaml'))
  const params = parameters(t, { TargetIds: 'r-abcd', ...overrides }, PSEUDO)
  const content = resolve(t, t.Resources.CeilingScp.Properties.Content, params)
  const size = JSON.stringify(content).length
  if (size > 5120) throw new Error(`the SCP is ${size} characters minified: Organizations allows 5,120`)
  return content
}

/** A request made with the bootstrap role's session (its one inline policy). */
function asBootstrap(b, name, expect, principal, action, resource, opts) {
  return {
    name,
    expect,
    simulation: {
      request: request(principal, action, resource, opts),
      ...state(opts),
      identityPolicies: [{ name: 'crossrole-bootstrap', policy: b.policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
  }
}

// ---- the bootstrap role's session, as crossroled uses it and as an attacker would -----------------------------------

function bootstrapCases() {
  const b = bootstrap()
  const B = (name, expect, action, resource, opts) => asBootstrap(b, name, expect, BOOTSTRAP, action, resource, opts)
  const on = (which) => ROLES[which]
  const r = (which) => on(which).arn
  // A role is created with its ownership tags only; a spec's own tags follow on the owned role.
  const create = (p, extra = {}) => ({ tags: { ...OWNERSHIP }, ...extra, resource: ARN(`role${p}`) })
  const cases = []
  // What crossroled does.
  {
    const c = create('/crossrole/Audit', { boundary: CEILING })
    cases.push(B('crossroled: CreateRole with its tags and the ceiling', 'Allowed', 'iam:CreateRole', c.resource, c))
    cases.push(
      B('crossroled: TagRole as part of CreateRole (a new role)', 'Allowed', 'iam:TagRole', c.resource, { tags: c.tags }),
    )
  }
  for (const a of ['iam:GetRole', 'iam:ListAttachedRolePolicies', 'iam:ListRolePolicies', 'iam:GetRolePolicy']) {
    cases.push(B(`crossroled: ${a} of any role`, 'Allowed', a, r('outside the path, tagged as owned'), {}))
  }
  cases.push(
    B('crossroled: GetAccountAuthorizationDetails (the inventory, read-only)', 'Allowed', 'iam:GetAccountAuthorizationDetails', '*', {}),
  )
  const owned = { role: on('owned') }
  cases.push(B('crossroled: PutRolePolicy on an owned role', 'Allowed', 'iam:PutRolePolicy', r('owned'), owned))
  cases.push(
    B('crossroled: AttachRolePolicy on an owned role', 'Allowed', 'iam:AttachRolePolicy', r('owned'), {
      ...owned,
      policyArn: 'arn:aws:iam::aws:policy/SecurityAudit',
    }),
  )
  cases.push(
    B('crossroled: DetachRolePolicy from an owned role', 'Allowed', 'iam:DetachRolePolicy', r('owned'), {
      ...owned,
      policyArn: 'arn:aws:iam::aws:policy/SecurityAudit',
    }),
  )
  for (const a of [
    'iam:DeleteRolePolicy',
    'iam:UpdateAssumeRolePolicy',
    'iam:UpdateRole',
    'iam:UpdateRoleDescription',
    'iam:DeleteRole',
  ]) {
    cases.push(B(`crossroled: ${a} on an owned role`, 'Allowed', a, r('owned'), owned))
  }
  cases.push(B("crossroled: TagRole with the spec's tags", 'Allowed', 'iam:TagRole', r('owned'), { ...owned, tags: { team: 'audit' } }))
  cases.push(B("crossroled: UntagRole a spec's tag", 'Allowed', 'iam:UntagRole', r('owned'), { ...owned, keys: ['team'] }))
  cases.push(
    B(
      'crossroled: repair: the ceiling first on an owned role without a boundary',
      'Allowed',
      'iam:PutRolePermissionsBoundary',
      r('owned, no boundary (made before the ceiling)'),
      { role: on('owned, no boundary (made before the ceiling)'), boundary: CEILING },
    ),
  )
  cases.push(
    B('crossroled: adopt, step 1: the ceiling on a hand-made role under the path', 'Allowed', 'iam:PutRolePermissionsBoundary', r('unowned under the path'), {
      role: on('unowned under the path'),
      boundary: CEILING,
    }),
  )
  cases.push(
    B('crossroled: adopt, step 2: claim it, now bounded', 'Allowed', 'iam:TagRole', r('unowned under the path, bounded'), {
      role: on('unowned under the path, bounded'),
      tags: OWNERSHIP,
    }),
  )

  // IAM's tag keys are case-insensitive: every reserved key, in any case.
  for (const key of ['Crossrole:Spec', 'CROSSROLE:MANAGED-BY', 'Crossrole:Managed-By']) {
    cases.push(B(`attack: TagRole ${key} on an owned role`, 'Denied', 'iam:TagRole', r('owned'), { ...owned, tags: { [key]: 'mallory' } }))
    cases.push(B(`attack: UntagRole ${key}`, 'Denied', 'iam:UntagRole', r('owned'), { ...owned, keys: [key] }))
  }
  cases.push(B('attack: designate an owned role a grantee as Crossrole:Grantee', 'Denied', 'iam:TagRole', r('owned'), { ...owned, tags: { 'Crossrole:Grantee': 'true' } }))
  cases.push(
    B('attack: claim a hand-made role with Crossrole:Grantee in the same call', 'Denied', 'iam:TagRole', r('unowned under the path'), {
      role: on('unowned under the path'),
      tags: { ...OWNERSHIP, 'Crossrole:Grantee': 'true' },
    }),
  )
  cases.push(
    B('attack: claim a hand-made role with another tag (an ABAC key) in the same call', 'Denied', 'iam:TagRole', r('unowned under the path'), {
      role: on('unowned under the path'),
      tags: { ...OWNERSHIP, team: 'finance' },
    }),
  )
  {
    const c = create('/crossrole/Evil', { boundary: CEILING, tags: { ...OWNERSHIP, 'Crossrole:Grantee': 'true' } })
    cases.push(B('attack: CreateRole carrying Crossrole:Grantee (the TagRole it needs)', 'Denied', 'iam:TagRole', c.resource, { tags: c.tags }))
  }
  // An attacker with the session: writes to owned roles that lack the ceiling.
  for (const which of ['owned, no boundary (made before the ceiling)', 'owned, another boundary']) {
    const o = { role: on(which) }
    cases.push(B(`attack: PutRolePolicy "Action":"*" on a role ${which}`, 'Denied', 'iam:PutRolePolicy', r(which), o))
    cases.push(
      B(`attack: UpdateAssumeRolePolicy to trust ${ATTACKER} on a role ${which}`, 'Denied', 'iam:UpdateAssumeRolePolicy', r(which), o),
    )
    cases.push(
      B(`attack: AttachRolePolicy AdministratorAccess to a role ${which}`, 'Denied', 'iam:AttachRolePolicy', r(which), {
        ...o,
        policyArn: 'arn:aws:iam::aws:policy/AdministratorAccess',
      }),
    )
    cases.push(
      B(`attack: DetachRolePolicy (a deny) from a role ${which}`, 'Denied', 'iam:DetachRolePolicy', r(which), {
        ...o,
        policyArn: ARN('policy/deny-everything'),
      }),
    )
    cases.push(B(`attack: DeleteRolePolicy (a deny) from a role ${which}`, 'Denied', 'iam:DeleteRolePolicy', r(which), o))
  }
  cases.push(
    B('attack: UpdateRole (longer sessions) of an owned role without a boundary', 'Denied', 'iam:UpdateRole', r('owned, no boundary (made before the ceiling)'), {
      role: on('owned, no boundary (made before the ceiling)'),
    }),
  )
  cases.push(
    B('attack: UpdateAssumeRolePolicy of a hand-made role under the path the ceiling bounds', 'Denied', 'iam:UpdateAssumeRolePolicy', r('unowned under the path, bounded'), {
      role: on('unowned under the path, bounded'),
    }),
  )
  // What IAM's grammar cannot refuse: a trust policy's content (deploy/README.md names the alarm).
  cases.push(
    B(`attack: trust ${ATTACKER} on an owned role the ceiling bounds (IAM cannot refuse it)`, 'Allowed', 'iam:UpdateAssumeRolePolicy', r('owned'), owned),
  )
  // Claiming.
  cases.push(
    B('attack: claim a role outside the path by tagging it', 'Denied', 'iam:TagRole', ARN('role/Admin2'), {
      role: { tags: {} },
      tags: OWNERSHIP,
    }),
  )
  cases.push(
    B("attack: TagRole overwrites an owned role's crossrole:managed-by", 'Denied', 'iam:TagRole', r('owned'), {
      ...owned,
      tags: { 'crossrole:managed-by': 'mallory' },
    }),
  )
  cases.push(
    B("attack: TagRole moves an owned role to another spec (crossrole:spec)", 'Denied', 'iam:TagRole', r('owned'), {
      ...owned,
      tags: { 'crossrole:spec': 'other' },
    }),
  )
  // A claim itself cannot require the ceiling (TagRole has no iam:PermissionsBoundary key): claiming an unbounded
  // hand-made role under the path is allowed, and gives nothing — every write to it is still refused.
  cases.push(
    B('attack: claim an unbounded hand-made role under the path (IAM cannot refuse it)', 'Allowed', 'iam:TagRole', r('unowned under the path'), {
      role: on('unowned under the path'),
      tags: OWNERSHIP,
    }),
  )
  cases.push(
    B('attack: ... then trust an outside account on it', 'Denied', 'iam:UpdateAssumeRolePolicy', r('unowned under the path'), {
      role: { ...on('unowned under the path'), tags: { ...on('unowned under the path').tags, ...OWNERSHIP } },
    }),
  )
  cases.push(
    B('attack: ... or put "Action":"*" on it', 'Denied', 'iam:PutRolePolicy', r('unowned under the path'), {
      role: { ...on('unowned under the path'), tags: { ...on('unowned under the path').tags, ...OWNERSHIP } },
    }),
  )
  cases.push(
    B('attack: claim a hand-made role and designate it a grantee in the same call', 'Denied', 'iam:TagRole', r('unowned under the path'), {
      role: on('unowned under the path'),
      tags: { ...OWNERSHIP, 'crossrole:grantee': 'true' },
    }),
  )
  cases.push(
    B('attack: designate an owned role a grantee', 'Denied', 'iam:TagRole', r('owned'), { ...owned, tags: { 'crossrole:grantee': 'true' } }),
  )
  cases.push(
    B('attack: UntagRole the ownership tag', 'Denied', 'iam:UntagRole', r('owned'), { ...owned, keys: ['crossrole:managed-by'] }),
  )
  // Making roles past the ceiling.
  const bad = [
    ['attack: CreateRole without a boundary', create('/crossrole/Evil')],
    [
      'attack: CreateRole with AdministratorAccess as its boundary',
      create('/crossrole/Evil', { boundary: 'arn:aws:iam::aws:policy/AdministratorAccess' }),
    ],
    ["attack: CreateRole with another account's ceiling", create('/crossrole/Evil', { boundary: CEILING.replace(ACCT, ATTACKER) })],
    ['attack: CreateRole outside the path', create('/Evil', { boundary: CEILING })],
    ['attack: CreateRole without the ownership tag', { resource: ARN('role/crossrole/Evil'), tags: { team: 'x' }, boundary: CEILING }],
  ]
  for (const [name, c] of bad) cases.push(B(name, 'Denied', 'iam:CreateRole', c.resource, c))
  cases.push(
    B('attack: PutRolePermissionsBoundary to AdministratorAccess', 'Denied', 'iam:PutRolePermissionsBoundary', r('owned'), {
      ...owned,
      boundary: 'arn:aws:iam::aws:policy/AdministratorAccess',
    }),
  )
  cases.push(B('attack: DeleteRolePermissionsBoundary of an owned role', 'Denied', 'iam:DeleteRolePermissionsBoundary', r('owned'), owned))
  for (const a of ['iam:CreatePolicyVersion', 'iam:DeletePolicy', 'iam:SetDefaultPolicyVersion', 'iam:CreatePolicy']) {
    cases.push(B(`attack: ${a} on the ceiling policy`, 'Denied', a, CEILING, {}))
  }
  cases.push(
    B('attack: PutRolePolicy on the bootstrap role', 'Denied', 'iam:PutRolePolicy', BOOTSTRAP, { role: on('the bootstrap role') }),
  )
  cases.push(
    B('attack: UpdateAssumeRolePolicy of the bootstrap role', 'Denied', 'iam:UpdateAssumeRolePolicy', BOOTSTRAP, {
      role: on('the bootstrap role'),
    }),
  )
  cases.push(B('attack: CreateUser', 'Denied', 'iam:CreateUser', ARN('user/mallory'), {}))
  cases.push(B('attack: PassRole', 'Denied', 'iam:PassRole', r('owned'), {}))
  cases.push(
    B('attack: assume a role it manages where the trusted side is not managed', 'Denied', 'sts:AssumeRole', 'arn:aws:iam::222233334444:role/crossrole/Audit', {
      extra: { 'aws:PrincipalOrgID': 'o-abcdefghij', 'aws:ResourceOrgID': 'o-abcdefghij' },
    }),
  )
  cases.push(
    B('attack: CreatePolicy under /crossrole/ where the trusted side is not managed', 'Denied', 'iam:CreatePolicy', GRANT, {
      tags: OWNERSHIP,
    }),
  )
  cases.push(
    B('attack: AttachUserPolicy where the trusted side is not managed', 'Denied', 'iam:AttachUserPolicy', ARN('user/alice'), {
      role: { tags: { 'crossrole:grantee': 'true' } },
      policyArn: GRANT,
    }),
  )
  return cases
}

// ---- with an allow-list of managed policies ---------------------------------------------------------------------------

function allowListCases() {
  const b = bootstrap({
    AllowedManagedPolicyArns: 'arn:aws:iam::aws:policy/SecurityAudit,arn:aws:iam::aws:policy/job-function/*',
  })
  const owned = { role: ROLES.owned }
  const attach = (arn) => ({ ...owned, policyArn: arn })
  return [
    asBootstrap(b, 'allow-list: attach an allowed policy', 'Allowed', BOOTSTRAP, 'iam:AttachRolePolicy', ROLES.owned.arn, attach('arn:aws:iam::aws:policy/SecurityAudit')),
    asBootstrap(b, 'allow-list: attach an allowed policy, by pattern', 'Allowed', BOOTSTRAP, 'iam:AttachRolePolicy', ROLES.owned.arn, attach('arn:aws:iam::aws:policy/job-function/ViewOnlyAccess')),
    asBootstrap(b, 'attack: allow-list: attach AdministratorAccess', 'Denied', BOOTSTRAP, 'iam:AttachRolePolicy', ROLES.owned.arn, attach('arn:aws:iam::aws:policy/AdministratorAccess')),
  ]
}

// ---- the trusted side ------------------------------------------------------------------------------------------------

function trustedSideCases() {
  const b = bootstrap({ ManageTrustedSide: 'true' })
  const T = (name, expect, action, resource, opts) => asBootstrap(b, `trusted side: ${name}`, expect, BOOTSTRAP, action, resource, opts)
  // (the trusted side's own tags: an owned role, a grantee)
  const grantee = { tags: { 'crossrole:grantee': 'true' } }
  const owned = { role: { tags: OWNERSHIP } }
  return [
    T('crossroled: CreatePolicy, its grant policy with its tags', 'Allowed', 'iam:CreatePolicy', GRANT, { tags: OWNERSHIP }),
    T('crossroled: TagPolicy as part of CreatePolicy', 'Allowed', 'iam:TagPolicy', GRANT, { tags: OWNERSHIP }),
    T('crossroled: GetPolicyVersion of its grant policy', 'Allowed', 'iam:GetPolicyVersion', GRANT, owned),
    T('crossroled: CreatePolicyVersion of its grant policy', 'Allowed', 'iam:CreatePolicyVersion', GRANT, owned),
    T('crossroled: DeletePolicyVersion of its grant policy', 'Allowed', 'iam:DeletePolicyVersion', GRANT, owned),
    T('crossroled: DeletePolicy, its grant policy', 'Allowed', 'iam:DeletePolicy', GRANT, owned),
    T('crossroled: AttachUserPolicy to a designated user', 'Allowed', 'iam:AttachUserPolicy', ARN('user/alice'), { role: grantee, policyArn: GRANT }),
    T('crossroled: DetachUserPolicy from a designated user', 'Allowed', 'iam:DetachUserPolicy', ARN('user/alice'), { role: grantee, policyArn: GRANT }),
    T('crossroled: AttachGroupPolicy to a group under the grantee path', 'Allowed', 'iam:AttachGroupPolicy', ARN('group/crossrole-grantees/auditors'), { policyArn: GRANT }),
    T('crossroled: AttachRolePolicy to a designated role', 'Allowed', 'iam:AttachRolePolicy', ROLES['a grantee role'].arn, { role: ROLES['a grantee role'], policyArn: GRANT }),
    T('attack: CreatePolicyVersion "Action":"*" of its own grant policy (IAM cannot refuse it)', 'Allowed', 'iam:CreatePolicyVersion', GRANT, owned),
    T('crossroled: verify: assume a role it manages in a member account', 'Allowed', 'sts:AssumeRole', 'arn:aws:iam::222233334444:role/crossrole/Audit', {
      role: { tags: OWNERSHIP },
      extra: { 'aws:PrincipalOrgID': 'o-abcdefghij', 'aws:ResourceOrgID': 'o-abcdefghij', 'sts:ExternalId': 'x' },
    }),
    T('attack: assume a role outside the managed path', 'Denied', 'sts:AssumeRole', 'arn:aws:iam::222233334444:role/OrganizationAccountAccessRole', {
      extra: { 'aws:PrincipalOrgID': 'o-abcdefghij', 'aws:ResourceOrgID': 'o-abcdefghij' },
    }),
    T('attack: assume a role in another organization', 'Denied', 'sts:AssumeRole', 'arn:aws:iam::444455556666:role/crossrole/Audit', {
      extra: { 'aws:PrincipalOrgID': 'o-abcdefghij', 'aws:ResourceOrgID': 'o-zzzzzzzzzz' },
    }),
    T('attack: assume an unowned role under the path (a hand-made admin trusting this account)', 'Denied', 'sts:AssumeRole', 'arn:aws:iam::222233334444:role/crossrole/LegacyAdmin', {
      extra: { 'aws:PrincipalOrgID': 'o-abcdefghij', 'aws:ResourceOrgID': 'o-abcdefghij' },
    }),
    T('attack: attach a grant policy to a user nobody designated', 'Denied', 'iam:AttachUserPolicy', ARN('user/admin'), { role: { tags: {} }, policyArn: GRANT }),
    T('attack: attach a grant policy to a group outside the grantee path', 'Denied', 'iam:AttachGroupPolicy', ARN('group/Admins'), { policyArn: GRANT }),
    T('attack: attach a grant policy to a role nobody designated', 'Denied', 'iam:AttachRolePolicy', ROLES['a role that is no grantee'].arn, { role: ROLES['a role that is no grantee'], policyArn: GRANT }),
    T('attack: attach AdministratorAccess to a designated user', 'Denied', 'iam:AttachUserPolicy', ARN('user/alice'), { role: grantee, policyArn: 'arn:aws:iam::aws:policy/AdministratorAccess' }),
    T('attack: CreatePolicyVersion of a policy under /crossrole/ it does not own', 'Denied', 'iam:CreatePolicyVersion', ARN('policy/crossrole/someone-elses'), { role: { tags: {} } }),
    T('attack: CreatePolicy under /crossrole/ without the ownership tag', 'Denied', 'iam:CreatePolicy', GRANT, { tags: { team: 'x' } }),
    T('attack: CreatePolicy outside /crossrole/', 'Denied', 'iam:CreatePolicy', ARN('policy/admin'), { tags: OWNERSHIP }),
    T('attack: TagPolicy claims an owned policy for another spec', 'Denied', 'iam:TagPolicy', GRANT, { role: { tags: OWNERSHIP }, tags: OWNERSHIP }),
  ]
}

// ---- a role bounded by the default ceiling: what it can still do --------------------------------------------------

function pivotCases() {
  const b = bootstrap()
  const role = ARN('role/crossrole/Audit')
  const P = (name, expect, action, resource, extra = {}) => ({
    name: `bounded admin: ${name}`,
    expect,
    simulation: {
      request: { principal: role, action, resource: { resource, accountId: ACCT }, contextVariables: { 'aws:PrincipalArn': role, 'aws:PrincipalAccount': ACCT, ...extra } },
      identityPolicies: [{ name: 'inline-admin', policy: ADMIN_DOC }],
      permissionBoundaryPolicies: [{ name: 'CrossroleCeiling', policy: b.ceiling }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
  })
  return [
    P('s3:GetObject', 'Allowed', 's3:GetObject', 'arn:aws:s3:::bucket/key'),
    P('ec2:DescribeInstances', 'Allowed', 'ec2:DescribeInstances', '*'),
    P('iam:GetRole', 'Allowed', 'iam:GetRole', ARN('role/any')),
    P('attack: sts:AssumeRole into a role that trusts its account root', 'Denied', 'sts:AssumeRole', ARN('role/OrganizationAccountAccessRole')),
    P('attack: lambda:UpdateFunctionCode', 'Denied', 'lambda:UpdateFunctionCode', `arn:aws:lambda:us-east-1:${ACCT}:function:admin-fn`),
    P('attack: lambda:UpdateFunctionConfiguration', 'Denied', 'lambda:UpdateFunctionConfiguration', `arn:aws:lambda:us-east-1:${ACCT}:function:admin-fn`),
    P('attack: ssm:SendCommand', 'Denied', 'ssm:SendCommand', `arn:aws:ec2:us-east-1:${ACCT}:instance/i-0123456789abcdef0`),
    P('attack: ssm:StartSession', 'Denied', 'ssm:StartSession', `arn:aws:ec2:us-east-1:${ACCT}:instance/i-0123456789abcdef0`),
    P('attack: ec2-instance-connect:SendSSHPublicKey', 'Denied', 'ec2-instance-connect:SendSSHPublicKey', `arn:aws:ec2:us-east-1:${ACCT}:instance/i-0123456789abcdef0`),
    P('attack: ecs:ExecuteCommand', 'Denied', 'ecs:ExecuteCommand', `arn:aws:ecs:us-east-1:${ACCT}:task/c/0123456789abcdef0123456789abcdef`),
    P('attack: codebuild:StartBuild', 'Denied', 'codebuild:StartBuild', `arn:aws:codebuild:us-east-1:${ACCT}:project/deploy`),
    P('attack: cloudformation:UpdateStack (its service role)', 'Denied', 'cloudformation:UpdateStack', `arn:aws:cloudformation:us-east-1:${ACCT}:stack/admin/0123`),
    P('attack: sts:AssumeRoot (root sessions on member accounts, from the management account)', 'Denied', 'sts:AssumeRoot', `arn:aws:iam::222233334444:root`),
    P('attack: sso:CreateAccountAssignment (Identity Center, from the management account)', 'Denied', 'sso:CreateAccountAssignment', `arn:aws:sso:::instance/ssoins-0123456789abcdef`),
    P('attack: codebuild:StartSandbox', 'Denied', 'codebuild:StartSandbox', `arn:aws:codebuild:us-east-1:${ACCT}:project/deploy`),
    P('attack: ssm:RegisterTaskWithMaintenanceWindow', 'Denied', 'ssm:RegisterTaskWithMaintenanceWindow', `arn:aws:ssm:us-east-1:${ACCT}:maintenancewindow/mw-0123456789abcdef0`),
    P('attack: batch:SubmitJob (a command override)', 'Denied', 'batch:SubmitJob', `arn:aws:batch:us-east-1:${ACCT}:job-definition/admin:1`),
    P('attack: glue:StartJobRun (job arguments)', 'Denied', 'glue:StartJobRun', `arn:aws:glue:us-east-1:${ACCT}:job/etl`),
    P('attack: iam:CreateUser', 'Denied', 'iam:CreateUser', ARN('user/mallory')),
    P('attack: iam:CreateAccessKey', 'Denied', 'iam:CreateAccessKey', ARN('user/admin')),
    P('attack: iam:PassRole', 'Denied', 'iam:PassRole', ARN('role/Admin')),
    P('attack: iam:UpdateAssumeRolePolicy', 'Denied', 'iam:UpdateAssumeRolePolicy', ARN('role/Admin')),
    P('attack: organizations:LeaveOrganization', 'Denied', 'organizations:LeaveOrganization', '*'),
    P('attack: account:CloseAccount', 'Denied', 'account:CloseAccount', '*'),
  ]
}

// ---- the SCP: every principal of a member account -----------------------------------------------------------------

function scpCases() {
  const policy = scp()
  const full = { Version: '2012-10-17', Statement: [{ Sid: 'FullAWSAccess', Effect: 'Allow', Action: '*', Resource: '*' }] }
  const S = (name, expect, principal, action, resource, opts) => ({
    name: `SCP: ${name}`,
    expect,
    simulation: {
      request: request(principal, action, resource, opts),
      ...state(opts),
      identityPolicies: [{ name: 'admin', policy: ADMIN_DOC }],
      serviceControlPolicies: [{ orgIdentifier: 'r-abcd', policies: [{ name: 'FullAWSAccess', policy: full }, { name: 'crossrole-ceiling', policy }] }],
      resourceControlPolicies: [],
    },
  })
  const under = ARN('role/crossrole/Sneaky')
  return [
    S('attack: an admin creates an untagged, unbounded role under the path', 'Denied', ADMIN, 'iam:CreateRole', under, { tags: { team: 'x' } }),
    S('attack: an admin creates a role tagged as crossrole\'s elsewhere, unbounded', 'Denied', ADMIN, 'iam:CreateRole', ARN('role/app/Sneaky'), { tags: { 'crossrole:managed-by': 'crossrole' } }),
    S('an admin creates a role under the path with the ceiling', 'Allowed', ADMIN, 'iam:CreateRole', under, { boundary: CEILING }),
    S('an admin creates a role elsewhere', 'Allowed', ADMIN, 'iam:CreateRole', ARN('role/app/Worker'), {}),
    S('attack: an admin writes an inline policy on an unbounded role under the path', 'Denied', ADMIN, 'iam:PutRolePolicy', ROLES['unowned under the path'].arn, { role: ROLES['unowned under the path'] }),
    S('attack: an admin changes the trust of an unbounded role under the path', 'Denied', ADMIN, 'iam:UpdateAssumeRolePolicy', ROLES['unowned under the path'].arn, { role: ROLES['unowned under the path'] }),
    S('an admin changes the trust of a role under the path the ceiling bounds', 'Allowed', ADMIN, 'iam:UpdateAssumeRolePolicy', ROLES.owned.arn, { role: ROLES.owned }),
    S('attack: untag, then lift the boundary: untag', 'Denied', ADMIN, 'iam:UntagRole', ROLES.owned.arn, { role: ROLES.owned, keys: ['crossrole:managed-by'] }),
    S('attack: untag, then lift the boundary: lift (the role under the path, untagged)', 'Denied', ADMIN, 'iam:DeleteRolePermissionsBoundary', ROLES['unowned under the path, bounded'].arn, { role: ROLES['unowned under the path, bounded'] }),
    S('attack: lift the boundary of a tagged role outside the path', 'Denied', ADMIN, 'iam:DeleteRolePermissionsBoundary', ROLES['outside the path, tagged as owned'].arn, { role: ROLES['outside the path, tagged as owned'] }),
    S('attack: an admin replaces the ceiling of a role under the path', 'Denied', ADMIN, 'iam:PutRolePermissionsBoundary', ROLES.owned.arn, { role: ROLES.owned, boundary: 'arn:aws:iam::aws:policy/AdministratorAccess' }),
    S('attack: an admin tags a role as crossrole\'s', 'Denied', ADMIN, 'iam:TagRole', ROLES['unowned under the path'].arn, { role: ROLES['unowned under the path'], tags: OWNERSHIP }),
    S('the bootstrap role claims a role', 'Allowed', BOOTSTRAP, 'iam:TagRole', ROLES['unowned under the path, bounded'].arn, { role: ROLES['unowned under the path, bounded'], tags: OWNERSHIP }),
    S('attack: an admin changes the ceiling policy', 'Denied', ADMIN, 'iam:CreatePolicyVersion', CEILING, {}),
    S('the StackSet changes the ceiling policy', 'Allowed', STACKSET, 'iam:CreatePolicyVersion', CEILING, {}),
    S('attack: an admin tags a role as crossrole\'s as Crossrole:Managed-By', 'Denied', ADMIN, 'iam:TagRole', ROLES['unowned under the path'].arn, { role: ROLES['unowned under the path'], tags: { 'Crossrole:Managed-By': 'crossrole' } }),
    S('attack: an admin untags CROSSROLE:MANAGED-BY from a tagged role outside the path', 'Denied', ADMIN, 'iam:UntagRole', ROLES['outside the path, tagged as owned'].arn, { role: ROLES['outside the path, tagged as owned'], keys: ['CROSSROLE:MANAGED-BY'] }),
    S('attack: an admin makes a role named like the StackSet\'s execution roles', 'Denied', ADMIN, 'iam:CreateRole', ARN('role/stacksets-exec-mallory'), {}),
    S('attack: an admin changes the trust of a StackSet execution role', 'Denied', ADMIN, 'iam:UpdateAssumeRolePolicy', STACKSET, { role: { tags: {} } }),
    S('attack: an admin makes a policy under /crossrole/ (for the bootstrap role to claim)', 'Denied', ADMIN, 'iam:CreatePolicy', ARN('policy/crossrole/planted'), {}),
    S('attack: an admin writes a version of a grant policy', 'Denied', ADMIN, 'iam:CreatePolicyVersion', GRANT, { role: { tags: OWNERSHIP } }),
    S('the bootstrap role makes its grant policy', 'Allowed', BOOTSTRAP, 'iam:CreatePolicy', GRANT, { tags: OWNERSHIP }),
    S('the StackSet updates the bootstrap role (under the path, no boundary)', 'Allowed', STACKSET, 'iam:PutRolePolicy', BOOTSTRAP, { role: ROLES['the bootstrap role'] }),
    S("an admin lifts another role's boundary", 'Allowed', ADMIN, 'iam:DeleteRolePermissionsBoundary', ARN('role/app/Worker'), { role: { tags: {}, boundary: CEILING } }),
  ]
}

// A managed path of "/" would put every role of the account in reach: the templates refuse it.
for (const [file, param] of [['crossrole-bootstrap.yaml', 'ManagedRolePath'], ['crossrole-ceiling-scp.yaml', 'ManagedRolePath']]) {
  const t = load(path.join(dir, file))
  const pattern = new RegExp(`^(?:${t.Parameters[param].AllowedPattern})$`)
  if (pattern.test('/') || !pattern.test('/crossrole/')) {
    console.log(`${file}: ${param} must refuse "/" and take "/crossrole/"`)
    process.exit(1)
  }
}

const sections = [
  ["the bootstrap role's session (default parameters: any managed policy, no trusted side)", bootstrapCases()],
  ['the bootstrap role with an allow-list of managed policies', allowListCases()],
  ['the bootstrap role in a trusted account (ManageTrustedSide=true)', trustedSideCases()],
  ['a role with "Action":"*" under the default ceiling', pivotCases()],
  ['the SCP, for every principal of a member account (with FullAWSAccess)', scpCases()],
]
let ok = true
let total = 0
for (const [title, cases] of sections) {
  const rows = await judge(cases)
  total += rows.length
  ok = report(`deploy/aws: ${title}`, rows) && ok
}
console.log(`\nceiling matrix: ${total} requests judged by @cloud-copilot/iam-simulate (strict); ${ok ? 'every decision as expected' : 'SOME DECISIONS NOT AS EXPECTED'}`)
process.exit(ok ? 0 : 1)
